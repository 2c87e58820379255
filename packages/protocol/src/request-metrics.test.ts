import test from "ava";
import { LATENCY_BUCKETS_MS, addTotals, emptyTotals, errorRate, latencyQuantileMs, totalsFromWire, totalsSince, type RequestTotals } from "./request-metrics.js";

/** Totals of `latencies` (ms), each with status 200 unless listed in `failed`. */
function totalsOf(latencies: number[], failed = 0): RequestTotals {
  const totals = emptyTotals();
  for (const [i, ms] of latencies.entries()) {
    totals.requests++;
    if (i < failed) totals.status5xx++;
    else totals.status2xx++;
    totals.latencySumMs += ms;
    for (const [b, bound] of LATENCY_BUCKETS_MS.entries()) if (ms <= bound) totals.latencyLe[b]!++;
  }
  return totals;
}

test("p99 is read from the buckets as histogram_quantile does: interpolated inside the bucket it falls in", (t) => {
  // 99 fast requests and one slow: p99 is the 99th, at the top of the 5 ms bucket.
  t.is(latencyQuantileMs(totalsOf([...Array(99).fill(3), 900]), 0.99), 5);
  // All requests 300 ms slower land in the (250, 300] bucket: p99 well above 200 ms.
  const slow = latencyQuantileMs(totalsOf(Array(1000).fill(320)), 0.99)!;
  t.true(slow > 300 && slow <= 400, `p99 ${slow}`);
  t.is(latencyQuantileMs(totalsOf(Array(10).fill(60_000)), 0.99), 10_000, "past the last bound: that bound");
  t.is(latencyQuantileMs(emptyTotals(), 0.99), undefined);
});

test("the error rate counts 5xx over requests", (t) => {
  t.is(errorRate(totalsOf(Array(200).fill(1), 10)), 0.05);
  t.is(errorRate(emptyTotals()), 0);
});

test("what was counted between two readings is their difference, and sums add up", (t) => {
  const before = totalsOf(Array(10).fill(20), 1);
  const after = addTotals(before, totalsOf(Array(30).fill(120), 3));
  t.deepEqual(totalsSince(after, before), totalsOf(Array(30).fill(120), 3));
  t.is(totalsSince(before, after).requests, 0, "never below zero");
});

test("wire counters read as numbers, missing buckets as 0", (t) => {
  const totals = totalsFromWire({ requests: 5, status_2xx: 4, status_5xx: 1, upstreamErrors: 1, latencyLe: [1, 2], latencySumMs: 42 });
  t.like(totals, { requests: 5, status2xx: 4, status5xx: 1, upstreamErrors: 1, latencySumMs: 42 });
  t.deepEqual(totals.latencyLe.slice(0, 3), [1, 2, 0]);
  t.is(totals.latencyLe.length, LATENCY_BUCKETS_MS.length);
});
