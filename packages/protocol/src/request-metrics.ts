// Request metrics as agents report them (RequestCounters in resources.proto)
// and the coordinator reads them: the latency buckets both sides share, and
// the arithmetic on cumulative counters.
import type { cutover } from "../gen/proto.js";

/**
 * Upper bounds (milliseconds) of the latency histogram every nginx site
 * counts into; a p99 is read from them (Prometheus's histogram_quantile way).
 */
export const LATENCY_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 2500, 5000, 10_000];

/** How many RequestCounters one Heartbeat carries at most. */
export const MAX_REQUEST_COUNTERS = 256;

/** Counters of one group as numbers (the wire's uint64 fields read once). */
export interface RequestTotals {
  requests: number;
  status2xx: number;
  status3xx: number;
  status4xx: number;
  status5xx: number;
  upstreamErrors: number;
  /** Cumulative counts at each LATENCY_BUCKETS_MS bound. */
  latencyLe: number[];
  latencySumMs: number;
}

export function emptyTotals(): RequestTotals {
  return { requests: 0, status2xx: 0, status3xx: 0, status4xx: 0, status5xx: 0, upstreamErrors: 0, latencyLe: LATENCY_BUCKETS_MS.map(() => 0), latencySumMs: 0 };
}

export function totalsFromWire(wire: cutover.v1.RequestCounters.$Properties): RequestTotals {
  const le = wire.latencyLe ?? [];
  return {
    requests: Number(wire.requests ?? 0),
    status2xx: Number(wire.status_2xx ?? 0),
    status3xx: Number(wire.status_3xx ?? 0),
    status4xx: Number(wire.status_4xx ?? 0),
    status5xx: Number(wire.status_5xx ?? 0),
    upstreamErrors: Number(wire.upstreamErrors ?? 0),
    latencyLe: LATENCY_BUCKETS_MS.map((_, i) => Number(le[i] ?? 0)),
    latencySumMs: wire.latencySumMs ?? 0,
  };
}

/** a + b, field by field. */
export function addTotals(a: RequestTotals, b: RequestTotals): RequestTotals {
  return combine(a, b, (x, y) => x + y);
}

/** What was counted between `before` and `after` (never below zero). */
export function totalsSince(after: RequestTotals, before: RequestTotals): RequestTotals {
  return combine(after, before, (x, y) => Math.max(0, x - y));
}

function combine(a: RequestTotals, b: RequestTotals, op: (x: number, y: number) => number): RequestTotals {
  return {
    requests: op(a.requests, b.requests),
    status2xx: op(a.status2xx, b.status2xx),
    status3xx: op(a.status3xx, b.status3xx),
    status4xx: op(a.status4xx, b.status4xx),
    status5xx: op(a.status5xx, b.status5xx),
    upstreamErrors: op(a.upstreamErrors, b.upstreamErrors),
    latencyLe: a.latencyLe.map((n, i) => op(n, b.latencyLe[i] ?? 0)),
    latencySumMs: op(a.latencySumMs, b.latencySumMs),
  };
}

/** Share of requests that failed (5xx, which includes nginx's own 502/504 for upstream errors), 0..1; 0 without requests. */
export function errorRate(totals: RequestTotals): number {
  return totals.requests === 0 ? 0 : totals.status5xx / totals.requests;
}

/**
 * The q-quantile of latency (ms) from the cumulative buckets, interpolated
 * linearly inside its bucket as Prometheus's histogram_quantile does; past the
 * last bound it is that bound. Undefined without requests.
 */
export function latencyQuantileMs(totals: RequestTotals, q: number): number | undefined {
  if (totals.requests === 0) return undefined;
  const rank = q * totals.requests;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [i, bound] of LATENCY_BUCKETS_MS.entries()) {
    const count = totals.latencyLe[i] ?? 0;
    if (count >= rank) return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / Math.max(1, count - lowerCount);
    lowerBound = bound;
    lowerCount = count;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1];
}
