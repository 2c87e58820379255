import test from "ava";
import { LATENCY_BUCKETS_MS, emptyTotals, type RequestTotals } from "@cutover/protocol";
import type { AnalysisSpec } from "@cutover/spec";
import { describeMeasurement, judge } from "./measurement.js";
import { meets } from "./prometheus.js";

const SPEC: AnalysisSpec = { intervalMs: 10_000, count: 6, failureLimit: 0, minRequests: 20, maxErrorRatePercent: 1, maxLatencyP99Ms: 200 };

function requests(n: number, ms: number, failed = 0): RequestTotals {
  const totals = emptyTotals();
  totals.requests = n;
  totals.status5xx = failed;
  totals.status2xx = n - failed;
  totals.latencySumMs = n * ms;
  totals.latencyLe = LATENCY_BUCKETS_MS.map((bound) => (ms <= bound ? n : 0));
  return totals;
}

test("a measurement within every threshold passes, with its figures", (t) => {
  const m = judge(2, requests(400, 30, 2), SPEC);
  t.like(m, { index: 2, verdict: "passed", requests: 400, errorRatePercent: 0.5 });
  t.is(describeMeasurement(m, 6), `measurement 2/6: passed — 400 request(s), 0.5% errors, p99 ${Math.round(m.latencyP99Ms!)} ms`);
});

test("5 % of requests answered 500 fails max_error_rate 1%, naming the value and the threshold", (t) => {
  const m = judge(1, requests(400, 30, 20), SPEC);
  t.like(m, { verdict: "failed", why: "error rate 5% > max_error_rate 1% (20 of 400 requests)" });
});

test("300 ms more latency fails max_latency_p99 200ms", (t) => {
  const m = judge(1, requests(400, 330), SPEC);
  t.is(m.verdict, "failed");
  t.regex(m.why!, /^p99 latency \d+ ms > max_latency_p99 200 ms$/);
});

test("fewer requests than min_requests is inconclusive, not passed", (t) => {
  t.like(judge(1, requests(3, 30), SPEC), { verdict: "inconclusive", why: "3 request(s), fewer than min_requests 20" });
  t.like(judge(1, emptyTotals(), SPEC), { verdict: "inconclusive", requests: 0 });
});

test("the Prometheus check passes or fails on its success condition; a query error is inconclusive", (t) => {
  const spec: AnalysisSpec = { ...SPEC, maxErrorRatePercent: undefined, maxLatencyP99Ms: undefined, prometheus: { url: "http://127.0.0.1:9090", query: "q", success: { comparator: "<", value: 0.01 } } };
  t.like(judge(1, emptyTotals(), spec, { value: 0.001 }), { verdict: "passed", queryValue: 0.001 });
  t.like(judge(1, emptyTotals(), spec, { value: 0.2 }), { verdict: "failed", why: "prometheus query = 0.2, not < 0.01" });
  t.like(judge(1, emptyTotals(), spec, { error: "Prometheus at http://127.0.0.1:9090 did not answer" }), { verdict: "inconclusive" });
});

test("a failure beats an inconclusive part of the same measurement", (t) => {
  const spec: AnalysisSpec = { ...SPEC, prometheus: { url: "http://127.0.0.1:9090", query: "q", success: { comparator: "<", value: 1 } } };
  t.is(judge(1, requests(400, 30, 40), spec, { error: "down" }).verdict, "failed");
});

test("comparators", (t) => {
  t.true(meets(1, { comparator: "<=", value: 1 }));
  t.false(meets(1, { comparator: "<", value: 1 }));
  t.true(meets(2, { comparator: ">", value: 1 }));
  t.true(meets(1, { comparator: ">=", value: 1 }));
  t.true(meets(1, { comparator: "==", value: 1 }));
  t.true(meets(2, { comparator: "!=", value: 1 }));
});
