import { errorRate, latencyQuantileMs, type RequestTotals } from "@cutover/protocol";
import type { AnalysisSpec } from "@cutover/spec";
import { meets } from "./prometheus.js";

/** A measurement's verdict, and the analysis's: failed beats inconclusive beats passed. */
export type Verdict = "passed" | "failed" | "inconclusive";

/** One measurement of an analysis: what the requests of one interval (and the query) showed. */
export interface Measurement {
  /** 1-based, of the analysis's count. */
  index: number;
  verdict: Verdict;
  requests: number;
  /** Percent of the interval's requests that got a 5xx (nginx's own 502/504 for an upstream that failed included). */
  errorRatePercent?: number;
  latencyP99Ms?: number;
  /** The Prometheus query's value. */
  queryValue?: number;
  /** Why it failed or was inconclusive, naming the check, the measured value and the threshold. */
  why?: string;
}

/** What the Prometheus provider gave for this interval: its value, or why there is none. */
export type QueryOutcome = { value: number } | { error: string };

const percent = (n: number) => `${Number(n.toFixed(2))}%`;
const ms = (n: number) => `${Math.round(n)} ms`;

/** Judges one interval's requests (and query result) against the spec's checks. */
export function judge(index: number, totals: RequestTotals, spec: AnalysisSpec, query?: QueryOutcome): Measurement {
  const failed: string[] = [];
  const inconclusive: string[] = [];
  const measurement: Measurement = { index, verdict: "passed", requests: totals.requests };
  if (spec.maxErrorRatePercent !== undefined || spec.maxLatencyP99Ms !== undefined) {
    measurement.errorRatePercent = errorRate(totals) * 100;
    measurement.latencyP99Ms = latencyQuantileMs(totals, 0.99);
    if (totals.requests < spec.minRequests) {
      inconclusive.push(`${totals.requests} request(s), fewer than min_requests ${spec.minRequests}`);
    } else {
      if (spec.maxErrorRatePercent !== undefined && measurement.errorRatePercent > spec.maxErrorRatePercent) {
        failed.push(`error rate ${percent(measurement.errorRatePercent)} > max_error_rate ${percent(spec.maxErrorRatePercent)} (${totals.status5xx} of ${totals.requests} requests)`);
      }
      const p99 = measurement.latencyP99Ms;
      if (spec.maxLatencyP99Ms !== undefined && p99 !== undefined && p99 > spec.maxLatencyP99Ms) {
        failed.push(`p99 latency ${ms(p99)} > max_latency_p99 ${ms(spec.maxLatencyP99Ms)}`);
      }
    }
  }
  if (spec.prometheus && query) {
    const { comparator, value } = spec.prometheus.success;
    if ("error" in query) inconclusive.push(`prometheus: ${query.error}`);
    else {
      measurement.queryValue = query.value;
      if (!meets(query.value, spec.prometheus.success)) failed.push(`prometheus query = ${query.value}, not ${comparator} ${value}`);
    }
  }
  if (failed.length > 0) return { ...measurement, verdict: "failed", why: failed.join("; ") };
  if (inconclusive.length > 0) return { ...measurement, verdict: "inconclusive", why: inconclusive.join("; ") };
  return measurement;
}

/** One line for the deployment's events: `measurement 2/6: passed — 412 requests, 0.24% errors, p99 38 ms`. */
export function describeMeasurement(m: Measurement, count: number): string {
  const figures = [
    `${m.requests} request(s)`,
    ...(m.errorRatePercent !== undefined && m.requests > 0 ? [`${percent(m.errorRatePercent)} errors`] : []),
    ...(m.latencyP99Ms !== undefined ? [`p99 ${ms(m.latencyP99Ms)}`] : []),
    ...(m.queryValue !== undefined ? [`query ${m.queryValue}`] : []),
  ];
  return `measurement ${m.index}/${count}: ${m.verdict} — ${figures.join(", ")}${m.why ? `; ${m.why}` : ""}`;
}
