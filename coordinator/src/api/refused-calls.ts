import type { AuditStore } from "../store/audit.js";

/**
 * Refused API calls (401, 403) are audited, but nobody without a token may
 * choose how much the coordinator writes. Per remote address and minute the
 * first few get an audit row each; the rest are counted and written as one
 * row per address ("N more refused calls from A in the last minute"), and past
 * a rate they are answered 429 at once. Rows across all addresses are capped
 * too, and so are the addresses tracked, so a caller with many addresses
 * cannot get around it.
 *
 * A valid token is still honoured from an address over its budget: the
 * address may be shared (a NAT, a proxy, the coordinator's own host).
 */
export interface RefusalLimits {
  /** Refused calls per address and minute that get an audit row of their own. */
  auditedPerAddress: number;
  /** Such rows per minute across every address. */
  auditedInAll: number;
  /** Refused calls per address and minute answered with their own status; later ones get 429. */
  answeredPerAddress: number;
  /** Addresses counted separately; callers beyond share one count. */
  trackedAddresses: number;
  /** Addresses named in their own summary row at each flush; the rest share one. */
  summarizedAddresses: number;
}

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = {
  auditedPerAddress: 10,
  auditedInAll: 100,
  answeredPerAddress: 60,
  trackedAddresses: 1000,
  summarizedAddresses: 20,
};

export const REFUSAL_WINDOW_MS = 60_000;
const OTHER_ADDRESSES = "(other addresses)";

/** What to do with one refused call: audit it, only count it, or count it and answer 429. */
export type RefusalVerdict = "audit" | "count" | "throttle";

interface AddressWindow {
  startedAt: number;
  refused: number;
  /** Counted since the last summary row, by HTTP status. */
  unaudited: Map<number, number>;
}

export class RefusedCalls {
  private readonly windows = new Map<string, AddressWindow>();
  private allWindow = { startedAt: 0, audited: 0 };
  private readonly limits: RefusalLimits;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly audit: Pick<AuditStore, "record">, options: { limits?: Partial<RefusalLimits>; now?: () => number } = {}) {
    this.limits = { ...DEFAULT_REFUSAL_LIMITS, ...options.limits };
    this.now = options.now ?? Date.now;
  }

  /** Writes the summary rows every window, so a flood that stops is still told. */
  start(): void {
    this.timer = setInterval(() => this.flush(), REFUSAL_WINDOW_MS);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** Counts a call from `address` refused with `status` and says what to do with it. */
  refuse(address: string, status: number): RefusalVerdict {
    const now = this.now();
    const window = this.windowOf(address, now);
    window.refused += 1;
    if (window.refused <= this.limits.auditedPerAddress && this.takeFromAll(now)) return "audit";
    const verdict = window.refused > this.limits.answeredPerAddress ? "throttle" : "count";
    const answered = verdict === "throttle" ? 429 : status;
    window.unaudited.set(answered, (window.unaudited.get(answered) ?? 0) + 1);
    return verdict;
  }

  /** Seconds until `address` gets its own answers again (for Retry-After). */
  retryAfterSeconds(address: string): number {
    const window = this.windows.get(address) ?? this.windows.get(OTHER_ADDRESSES);
    return window ? Math.max(1, Math.ceil((window.startedAt + REFUSAL_WINDOW_MS - this.now()) / 1000)) : 1;
  }

  /**
   * Writes one row per address for the calls counted and not audited one by
   * one (the busiest addresses by name, the rest together), and forgets the
   * windows that ended. Called every window, before the trail is read, and at shutdown.
   */
  flush(): void {
    const now = this.now();
    const pending = [...this.windows].filter(([, w]) => w.unaudited.size > 0).sort(([, a], [, b]) => total(b.unaudited) - total(a.unaudited));
    const named = pending.slice(0, this.limits.summarizedAddresses);
    const rest = pending.slice(this.limits.summarizedAddresses);
    for (const [address, window] of named) this.summarize(address, window);
    if (rest.length > 0) {
      const merged: AddressWindow = { startedAt: Math.min(...rest.map(([, w]) => w.startedAt)), refused: 0, unaudited: new Map() };
      for (const [, window] of rest) for (const [status, n] of window.unaudited) merged.unaudited.set(status, (merged.unaudited.get(status) ?? 0) + n);
      this.summarize(`${rest.length} other addresses`, merged);
    }
    for (const [, window] of pending) window.unaudited.clear();
    for (const [address, window] of this.windows) if (now - window.startedAt >= REFUSAL_WINDOW_MS) this.windows.delete(address);
  }

  private windowOf(address: string, now: number): AddressWindow {
    let key = address;
    let window = this.windows.get(key);
    if (window && now - window.startedAt >= REFUSAL_WINDOW_MS) {
      if (window.unaudited.size > 0) this.summarize(key, window);
      this.windows.delete(key);
      window = undefined;
    }
    if (!window && this.windows.size >= this.limits.trackedAddresses) {
      key = OTHER_ADDRESSES;
      window = this.windows.get(key);
    }
    if (!window) this.windows.set(key, (window = { startedAt: now, refused: 0, unaudited: new Map() }));
    return window;
  }

  private takeFromAll(now: number): boolean {
    if (now - this.allWindow.startedAt >= REFUSAL_WINDOW_MS) this.allWindow = { startedAt: now, audited: 0 };
    if (this.allWindow.audited >= this.limits.auditedInAll) return false;
    this.allWindow.audited += 1;
    return true;
  }

  private summarize(from: string, window: AddressWindow): void {
    const statuses = [...window.unaudited].sort(([a], [b]) => a - b).map(([status, n]) => `${status}: ${n}`).join(", ");
    const since = new Date(window.startedAt).toISOString().slice(11, 19);
    this.audit.record({
      actor: "(refused callers)",
      action: "refused calls",
      target: from,
      outcome: "aggregated",
      detail: `${total(window.unaudited)} more refused calls from ${from} in the minute from ${since} UTC (${statuses}), not audited one by one`,
    });
  }
}

function total(byStatus: Map<number, number>): number {
  let n = 0;
  for (const count of byStatus.values()) n += count;
  return n;
}
