import { LATENCY_BUCKETS_MS } from "@cutover/protocol";
import type { Registry } from "prom-client";
import type { CounterReading } from "../fleet/request-metrics.js";

/** The labels of one counter: app, the reporting host, its nginx site ("app" or "lb") and the upstream group (color or backend host). */
const labelsOf = (c: CounterReading) => ({ app: c.app, host: c.host, site: c.site, group: c.group });

const STATUS_CLASSES = [
  ["2xx", "status2xx"],
  ["3xx", "status3xx"],
  ["4xx", "status4xx"],
  ["5xx", "status5xx"],
] as const;

/**
 * Registers the request counters the agents report (through every nginx
 * site, per app, host and group) as Prometheus series. They are cumulative
 * values reported by the agents, so they are exposed as they are, not
 * counted here: cutover_requests_total{code}, cutover_upstream_errors_total
 * and the cutover_request_duration_seconds histogram.
 */
export function registerRequestSeries(registry: Registry, counters: () => CounterReading[]): void {
  const metric = (name: string, help: string, type: "counter" | "histogram", values: () => { metricName?: string; labels: Record<string, string | number>; value: number }[]) => {
    registry.registerMetric({ name, help, type, get: async () => ({ name, help, type, values: values(), aggregator: "sum" }) } as never);
  };
  metric("cutover_requests_total", "Requests through the agents' nginx sites by app, host, site (app or lb), group (color or backend host) and status class.", "counter", () =>
    counters().flatMap((c) => STATUS_CLASSES.map(([code, field]) => ({ labels: { ...labelsOf(c), code }, value: c.totals[field] }))),
  );
  metric("cutover_upstream_errors_total", "Requests nginx could not pass on (upstream connect error or timeout), by app, host, site and group.", "counter", () =>
    counters().map((c) => ({ labels: labelsOf(c), value: c.totals.upstreamErrors })),
  );
  metric("cutover_request_duration_seconds", "Latency of the requests through the agents' nginx sites, by app, host, site and group.", "histogram", () =>
    counters().flatMap((c) => [
      ...LATENCY_BUCKETS_MS.map((bound, i) => ({ metricName: "cutover_request_duration_seconds_bucket", labels: { ...labelsOf(c), le: bound / 1000 }, value: c.totals.latencyLe[i] ?? 0 })),
      { metricName: "cutover_request_duration_seconds_bucket", labels: { ...labelsOf(c), le: "+Inf" }, value: c.totals.requests },
      { metricName: "cutover_request_duration_seconds_sum", labels: labelsOf(c), value: c.totals.latencySumMs / 1000 },
      { metricName: "cutover_request_duration_seconds_count", labels: labelsOf(c), value: c.totals.requests },
    ]),
  );
}
