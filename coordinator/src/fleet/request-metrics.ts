import { MAX_REQUEST_COUNTERS, addTotals, emptyTotals, totalsFromWire, totalsSince, type RequestTotals, type cutover } from "@cutover/protocol";

/** Which counters: an nginx site of one host, for one app and one upstream group (RequestCounters in resources.proto). */
export interface CounterSource {
  host: string;
  site: "app" | "lb";
  app: string;
  group: string;
}

export interface CounterReading extends CounterSource {
  /** When the counters started from zero (agent-reported; a new value means they were reset). */
  since: number;
  totals: RequestTotals;
}

/** A set of counters read at one instant, by source key. */
export type Reading = Map<string, CounterReading>;

const keyOf = (s: CounterSource) => `${s.host}\u0000${s.site}\u0000${s.app}\u0000${s.group}`;

/**
 * The latest request counters each host reported in its heartbeat, in memory
 * (a restarted coordinator has them again after one heartbeat). Counters are
 * cumulative; what was counted over a window is the difference of two
 * readings (`countedBetween`).
 */
export class RequestMetrics {
  readonly #byHost = new Map<string, CounterReading[]>();

  /** A heartbeat's counters replace the host's earlier ones. */
  report(host: string, wire: cutover.v1.RequestCounters.$Properties[] | null | undefined): void {
    const readings: CounterReading[] = [];
    for (const c of (wire ?? []).slice(0, MAX_REQUEST_COUNTERS)) {
      if ((c.site !== "app" && c.site !== "lb") || !c.app || !c.group) continue;
      readings.push({ host, site: c.site, app: c.app, group: c.group, since: Number(c.sinceUnixMs ?? 0), totals: totalsFromWire(c) });
    }
    this.#byHost.set(host, readings);
  }

  forget(host: string): void {
    this.#byHost.delete(host);
  }

  /** Every counter now, for /metrics. */
  all(): CounterReading[] {
    return [...this.#byHost.values()].flat();
  }

  /** The counters `which` selects, as they are now. */
  read(which: (source: CounterSource) => boolean): Reading {
    const reading: Reading = new Map();
    for (const counter of this.all()) if (which(counter)) reading.set(keyOf(counter), counter);
    return reading;
  }
}

/**
 * What the counters of `after` counted since `before`, summed: a counter
 * reset in between (a new `since`) counts from zero, and one absent from
 * `before` counts everything (it started in the window).
 */
export function countedBetween(before: Reading, after: Reading): RequestTotals {
  let sum = emptyTotals();
  for (const [key, now] of after) {
    const then = before.get(key);
    sum = addTotals(sum, then && then.since === now.since ? totalsSince(now.totals, then.totals) : now.totals);
  }
  return sum;
}
