// The request counters as Prometheus metric families, for the coordinator's
// and the agent's /metrics: plain objects a prom-client Registry takes with
// registerMetric (this package does not depend on prom-client).
import { LATENCY_BUCKETS_MS, type RequestTotals } from "./request-metrics.js";

/** One group's counters with the labels it is exposed under (app, site, group; the coordinator adds host). */
export interface LabelledTotals {
  labels: Record<string, string>;
  totals: RequestTotals;
}

interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/** What Registry.registerMetric needs of a metric: its name, and a get() for each scrape. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "histogram";
  get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: "sum" }>;
}

const STATUS_CLASSES = [
  ["2xx", "status2xx"],
  ["3xx", "status3xx"],
  ["4xx", "status4xx"],
  ["5xx", "status5xx"],
] as const;

/**
 * cutover_requests_total{code}, cutover_upstream_errors_total and the
 * cutover_request_duration_seconds histogram, read from `counters` at each
 * scrape. They are the cumulative values nginx counted, exposed as they are.
 */
export function requestMetricFamilies(counters: () => Promise<LabelledTotals[]> | LabelledTotals[]): MetricFamily[] {
  const family = (name: string, help: string, type: MetricFamily["type"], samples: (c: LabelledTotals) => Sample[]): MetricFamily => ({
    name,
    help,
    type,
    get: async () => ({ name, help, type, values: (await counters()).flatMap(samples), aggregator: "sum" }),
  });
  const bucket = "cutover_request_duration_seconds_bucket";
  return [
    family("cutover_requests_total", "Requests through the agents' nginx sites by app, site (app or lb), group (color or backend host) and status class.", "counter", (c) =>
      STATUS_CLASSES.map(([code, field]) => ({ labels: { ...c.labels, code }, value: c.totals[field] })),
    ),
    family("cutover_upstream_errors_total", "Requests nginx could not pass on (upstream connect error or timeout), by app, site and group.", "counter", (c) => [{ labels: c.labels, value: c.totals.upstreamErrors }]),
    family("cutover_request_duration_seconds", "Latency of the requests through the agents' nginx sites, by app, site and group.", "histogram", (c) => [
      ...LATENCY_BUCKETS_MS.map((bound, i) => ({ metricName: bucket, labels: { ...c.labels, le: bound / 1000 }, value: c.totals.latencyLe[i] ?? 0 })),
      { metricName: bucket, labels: { ...c.labels, le: "+Inf" }, value: c.totals.requests },
      { metricName: "cutover_request_duration_seconds_sum", labels: c.labels, value: c.totals.latencySumMs / 1000 },
      { metricName: "cutover_request_duration_seconds_count", labels: c.labels, value: c.totals.requests },
    ]),
  ];
}
