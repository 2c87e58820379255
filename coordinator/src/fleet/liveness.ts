/**
 * How the coordinator tells a slow host from a dead one (docs/architecture.md, "Liveness").
 *
 * Two clocks run per session. Heartbeats (sent by the agent's own loop every
 * `heartbeatIntervalMs`) say the agent is on time; WebSocket pings (sent by the
 * coordinator every `pingIntervalMs`, answered by the agent's socket layer) say
 * the link is alive. Only the second decides whether a session is cut:
 *
 *   online ──no heartbeat for LATE_AFTER_HEARTBEATS × interval──▶ late
 *     ▲                                                              │
 *     └──────────────────── a heartbeat arrives ◀────────────────────┘
 *   online, late ──a ping unanswered for pingTimeoutMs, or the socket closes──▶ unreachable
 *
 * Any frame from the agent answers an outstanding ping too: it shows the link is alive.
 */
export type HostLiveness = "online" | "late" | "unreachable";

export interface LivenessTimers {
  /** Interval the agent is told to heartbeat at. */
  heartbeatIntervalMs: number;
  /** How often the coordinator pings each session. */
  pingIntervalMs: number;
  /** A ping unanswered this long means the link is dead. */
  pingTimeoutMs: number;
}

/** Heartbeat intervals without a heartbeat before a host shows as `late`. */
export const LATE_AFTER_HEARTBEATS = 2;

export const DEFAULT_PING_INTERVAL_MS = 5_000;
/**
 * A pong needs one event-loop turn on the agent and a round trip: seconds even on a
 * saturated host. 15 s is what a frozen process (SIGSTOP, swap storm) or a cut link takes to show.
 */
export const DEFAULT_PING_TIMEOUT_MS = 15_000;

/** What a session knows of its link, in ms since the epoch. */
export interface LinkClock {
  /** The last heartbeat (the Hello counts as the first). */
  lastHeartbeatAt: number;
  /** When the last ping was sent. */
  lastPingAt: number;
  /** When the oldest unanswered ping was sent; undefined when every ping was answered. */
  unansweredPingSince: number | undefined;
}

export type LivenessVerdict =
  | { state: "online" }
  | { state: "late"; heartbeatOverdueMs: number }
  | { state: "dead"; unansweredForMs: number };

/** The one rule deciding a session's liveness. */
export function judgeLink(clock: LinkClock, now: number, timers: LivenessTimers): LivenessVerdict {
  if (clock.unansweredPingSince !== undefined && now - clock.unansweredPingSince >= timers.pingTimeoutMs) {
    return { state: "dead", unansweredForMs: now - clock.unansweredPingSince };
  }
  const silentMs = now - clock.lastHeartbeatAt;
  if (silentMs > LATE_AFTER_HEARTBEATS * timers.heartbeatIntervalMs) {
    return { state: "late", heartbeatOverdueMs: silentMs - timers.heartbeatIntervalMs };
  }
  return { state: "online" };
}

/** True when the session should be pinged now (no ping outstanding and the interval is up). */
export function pingDue(clock: LinkClock, now: number, timers: LivenessTimers): boolean {
  return clock.unansweredPingSince === undefined && now - clock.lastPingAt >= timers.pingIntervalMs;
}

/** How often the fleet checks every session: often enough to ping on time and see a late heartbeat within a quarter interval. */
export function checkEveryMs(timers: LivenessTimers): number {
  return Math.max(50, Math.floor(Math.min(timers.heartbeatIntervalMs, timers.pingIntervalMs) / 4));
}
