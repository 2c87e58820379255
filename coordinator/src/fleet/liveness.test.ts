import test from "ava";
import { checkEveryMs, judgeLink, LATE_AFTER_HEARTBEATS, pingDue, type LinkClock, type LivenessTimers } from "./liveness.js";

const timers: LivenessTimers = { heartbeatIntervalMs: 1_000, pingIntervalMs: 5_000, pingTimeoutMs: 15_000 };
const T0 = 1_000_000;
const clock = (overrides: Partial<LinkClock> = {}): LinkClock => ({ lastHeartbeatAt: T0, lastPingAt: T0, unansweredPingSince: undefined, ...overrides });

const cases: [string, LinkClock, number, ReturnType<typeof judgeLink>][] = [
  ["a heartbeat just in", clock(), T0, { state: "online" }],
  ["heartbeats due but within the late window", clock(), T0 + LATE_AFTER_HEARTBEATS * 1_000, { state: "online" }],
  ["heartbeats overdue, pings answered", clock(), T0 + 10_000, { state: "late", heartbeatOverdueMs: 9_000 }],
  ["heartbeats overdue for minutes, pings answered: still late, never cut", clock(), T0 + 600_000, { state: "late", heartbeatOverdueMs: 599_000 }],
  ["a ping outstanding for less than the timeout, heartbeats on time", clock({ unansweredPingSince: T0 }), T0 + 1_500, { state: "online" }],
  ["a ping outstanding for less than the timeout, heartbeats overdue", clock({ unansweredPingSince: T0 + 1_000 }), T0 + 10_000, { state: "late", heartbeatOverdueMs: 9_000 }],
  ["a ping unanswered for the timeout", clock({ unansweredPingSince: T0 }), T0 + 15_000, { state: "dead", unansweredForMs: 15_000 }],
  ["a ping unanswered past the timeout, even with a recent heartbeat", clock({ lastHeartbeatAt: T0 + 16_000, unansweredPingSince: T0 }), T0 + 16_500, { state: "dead", unansweredForMs: 16_500 }],
];

for (const [title, link, now, expected] of cases) {
  test(`liveness: ${title} → ${expected.state}`, (t) => {
    t.deepEqual(judgeLink(link, now, timers), expected);
  });
}

test("a ping is due once the interval is up and none is outstanding; one outstanding ping at a time", (t) => {
  t.false(pingDue(clock(), T0 + 4_999, timers));
  t.true(pingDue(clock(), T0 + 5_000, timers));
  t.false(pingDue(clock({ unansweredPingSince: T0 }), T0 + 10_000, timers), "the unanswered one is waited out, not stacked");
});

test("the fleet checks often enough to ping on time and see a late heartbeat within a quarter interval", (t) => {
  t.is(checkEveryMs(timers), 250);
  t.is(checkEveryMs({ ...timers, heartbeatIntervalMs: 100 }), 50, "never busier than every 50 ms");
});
