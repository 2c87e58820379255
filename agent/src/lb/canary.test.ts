// Canary routing through real nginx, as users see it: new users split by the canary
// percent, each keeps its group through the sticky cookie, pinned users always reach the
// canary, and an empty group never turns into errors.
import test from "ava";
import { applyLbSite } from "./apply.js";
import type { LbAnswer } from "./confirm.js";
import type { LbCanary, LbSiteConfig } from "./config.js";
import { cookieValue, lbFixture, type LbFixture } from "./test-helpers.js";

const COOKIE = "cutover_canary";
const CLIENTS = 200;
const REQUESTS_PER_CLIENT = 10;
const PERCENT = 20;
/**
 * reload mode splits new users at random (split_clients on $request_id): the canary count
 * is Binomial(200, 0.2), σ = 2.8 points, so ±10 points is 3.5σ. live mode's credit counter
 * is exact: at most one user off per worker.
 */
const TOLERANCE_POINTS = { reload: 10, live: 1 } as const;

function canarySite(f: LbFixture, mode: LbSiteConfig["switchMode"], canary: Partial<LbCanary> = {}, extra: Partial<LbSiteConfig> = {}): LbSiteConfig {
  return f.site(mode, {
    backends: [f.entry("s1"), f.entry("s2"), f.entry("k1", { group: "canary" })],
    canary: { cookie: COOKIE, weightPercent: PERCENT, ...canary },
    ...extra,
  });
}

function groupOf(f: LbFixture, answer: LbAnswer): "canary" | "stable" | null {
  const name = f.servedBy(answer);
  return name === null ? null : name.startsWith("k") ? "canary" : "stable";
}

/** Runs `work` for 0..count-1 with at most `width` in flight. */
async function inBatches(count: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

for (const mode of ["reload", "live"] as const) {
  const tolerance = TOLERANCE_POINTS[mode];
  test(`${mode} mode: ${CLIENTS} new users, ${PERCENT}% ± ${tolerance} point${tolerance === 1 ? "" : "s"} reach the canary; each keeps its group for ${REQUESTS_PER_CLIENT} more requests (100%)`, async (t) => {
    const f = await lbFixture(t, { backends: ["s1", "s2", "k1"] });
    await applyLbSite(f.runner, canarySite(f, mode));
    let canaryUsers = 0;
    let cookieMismatch = 0;
    let followUps = 0;
    let strays: string[] = [];
    await inBatches(CLIENTS, 10, async () => {
      const first = await f.get();
      const group = groupOf(f, first);
      const cookie = cookieValue(first.setCookie, COOKIE);
      if (first.status !== 200 || group === null || cookie !== group) {
        cookieMismatch += 1;
        return;
      }
      if (group === "canary") canaryUsers += 1;
      for (let i = 0; i < REQUESTS_PER_CLIENT; i += 1) {
        const next = await f.get("/", { cookie: `${COOKIE}=${cookie}` });
        followUps += 1;
        if (next.status !== 200 || groupOf(f, next) !== group) strays.push(`${group} user got ${next.status} from ${next.backend}`);
        if (next.setCookie.length > 0) strays.push(`returning ${group} user got Set-Cookie ${next.setCookie.join("; ")}`);
      }
    });
    const share = (100 * canaryUsers) / CLIENTS;
    t.log(`${mode}: ${canaryUsers}/${CLIENTS} new users (${share.toFixed(1)}%) sent to the canary; ${followUps} follow-up requests, ${strays.length} left their group`);
    t.is(cookieMismatch, 0, "every new user is told (by cookie) the group that served it");
    t.true(Math.abs(share - PERCENT) <= tolerance, `canary share ${share}%`);
    t.is(followUps, CLIENTS * REQUESTS_PER_CLIENT);
    strays = strays.slice(0, 5);
    t.deepEqual(strays, []);
  });

  test(`${mode} mode: a pinned header or cookie always reaches the canary, whatever the sticky cookie says; a wrong value does not`, async (t) => {
    const f = await lbFixture(t, { backends: ["s1", "s2", "k1"] });
    await applyLbSite(f.runner, canarySite(f, mode, { weightPercent: 0, pin: { kind: "header", name: "X-Cutover-Beta", value: "yes" } }));
    const pinned = await Promise.all(
      Array.from({ length: 30 }, (_, i) => f.get("/", { "x-cutover-beta": "yes", ...(i % 2 === 0 ? { cookie: `${COOKIE}=stable` } : {}) })),
    );
    t.deepEqual([...new Set(pinned.map((a) => f.servedBy(a)))], ["k1"]);
    t.true(pinned.every((a) => a.setCookie.length === 0), "a pin does not change the user's sticky group");
    const wrong = await Promise.all(Array.from({ length: 10 }, () => f.get("/", { "x-cutover-beta": "YES" })));
    t.true(wrong.every((a) => groupOf(f, a) === "stable"), "values are case-sensitive; 0% of new users go to the canary");

    await applyLbSite(f.runner, canarySite(f, mode, { weightPercent: 0, pin: { kind: "cookie", name: "beta", value: "on.1" } }));
    const byCookie = await Promise.all(Array.from({ length: 10 }, () => f.get("/", { cookie: `${COOKIE}=stable; beta=on.1` })));
    t.deepEqual([...new Set(byCookie.map((a) => f.servedBy(a)))], ["k1"]);
    const notPinned = await Promise.all(Array.from({ length: 10 }, () => f.get("/", { cookie: "beta=on-1", "x-cutover-beta": "yes" })));
    t.true(notPinned.every((a) => groupOf(f, a) === "stable"), "the header pin is gone; 'on-1' is not 'on.1'");
  });

  test(`${mode} mode: a group with no up backend falls back to the other one: no 5xx, new users are told the group that served them`, async (t) => {
    const f = await lbFixture(t, { backends: ["s1", "s2", "k1"] });
    const pin = { kind: "header" as const, name: "X-Cutover-Beta", value: "yes" };
    await applyLbSite(f.runner, canarySite(f, mode, { weightPercent: 50, pin }, { backends: [f.entry("s1"), f.entry("s2"), f.entry("k1", { group: "canary", state: "drain" })] }));
    const noCanary = await Promise.all([
      ...Array.from({ length: 10 }, () => f.get()),
      ...Array.from({ length: 10 }, () => f.get("/", { "x-cutover-beta": "yes" })),
      ...Array.from({ length: 10 }, () => f.get("/", { cookie: `${COOKIE}=canary` })),
    ]);
    t.true(noCanary.every((a) => a.status === 200 && groupOf(f, a) === "stable"), JSON.stringify(noCanary.map((a) => [a.status, a.body])));
    t.deepEqual(
      [...new Set(noCanary.slice(0, 10).map((a) => cookieValue(a.setCookie, COOKIE)))],
      ["stable"],
      "new users were sent to stable, so their cookie says stable",
    );

    await applyLbSite(f.runner, canarySite(f, mode, { weightPercent: 50, pin }, { backends: [f.entry("s1", { state: "down" }), f.entry("s2", { weight: 0 }), f.entry("k1", { group: "canary" })] }));
    const noStable = await Promise.all([
      ...Array.from({ length: 10 }, () => f.get()),
      ...Array.from({ length: 10 }, () => f.get("/", { cookie: `${COOKIE}=stable` })),
    ]);
    t.true(noStable.every((a) => a.status === 200 && f.servedBy(a) === "k1"), JSON.stringify(noStable.map((a) => [a.status, a.body])));
    t.deepEqual([...new Set(noStable.slice(0, 10).map((a) => cookieValue(a.setCookie, COOKIE)))], ["canary"]);
  });
}

test("live mode, two workers: a canary percent change reaches both workers' next requests", async (t) => {
  const f = await lbFixture(t, { backends: ["s1", "s2", "k1"], runner: { workerProcesses: 2 } });
  await applyLbSite(f.runner, canarySite(f, "live", { weightPercent: 0 }));
  const before = await Promise.all(Array.from({ length: 40 }, () => f.get()));
  t.true(before.every((a) => groupOf(f, a) === "stable"));
  const result = await applyLbSite(f.runner, canarySite(f, "live", { weightPercent: 100 }));
  t.false(result.reloaded);
  const after = await Promise.all(Array.from({ length: 40 }, () => f.get()));
  t.true(after.every((a) => groupOf(f, a) === "canary"), JSON.stringify(after.map((a) => a.body)));
});
