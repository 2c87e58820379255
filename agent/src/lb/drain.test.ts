// Drain as a rolling deploy uses it: under continuous keep-alive load, take one host out
// of the LB, prove it gets no new request, and wait until its last request is done. The
// "slow" request is held by the test backend until the test releases it: no timers.
import test from "ava";
import { startLoad } from "@cutover/testkit";
import { applyLbSite } from "./apply.js";
import type { LbAnswer } from "./confirm.js";
import { waitDrained, type DrainResult } from "./drain.js";
import { LbError } from "./errors.js";
import { lbFixture, type LbFixture } from "./test-helpers.js";

const LOAD_BETWEEN_STEPS = 200;

/**
 * Sends held requests through the LB until one is in flight on `name` (the others are
 * released at once); resolves with that request's answer-to-be, wrapped so that awaiting
 * this function does not await the answer too.
 */
async function heldRequestOn(f: LbFixture, name: string): Promise<{ answer: Promise<LbAnswer> }> {
  const others: Promise<LbAnswer>[] = [];
  for (let i = 0; i < 30; i += 1) {
    const path = `/hold?id=${i}`;
    const arrived = new Promise<string>((resolve) => {
      const listeners = f.backends.map((b) => {
        const listener = (url: string) => {
          if (url !== path) return;
          f.backends.forEach((other, j) => other.events.off("held", listeners[j]!));
          resolve(b.name);
        };
        b.events.on("held", listener);
        return listener;
      });
    });
    const answer = f.get(path);
    const on = await arrived;
    if (on === name) {
      await Promise.all(others);
      return { answer };
    }
    f.backend(on).release();
    others.push(answer);
  }
  throw new Error(`no held request reached ${name} in 30 tries`);
}

for (const mode of ["reload", "live"] as const) {
  const retry = mode === "reload";
  test(`${mode} mode: draining a host under keep-alive load: 0 failed requests${retry ? " (retrying client)" : " and 0 socket errors (no retry)"}, no new request reaches it, waitDrained waits for its last request`, async (t) => {
    const f = await lbFixture(t);
    await applyLbSite(f.runner, f.site(mode));
    const b = f.backend("b");
    const load = startLoad({
      address: f.address,
      port: f.listenPort,
      concurrency: 4,
      ratePerSec: 400,
      retry,
      maxRequests: 100_000,
      classify: (status, _headers, body) => (status === 200 ? body : null),
    });
    let drained: DrainResult | undefined;
    let held: LbAnswer | undefined;
    let pendingWhileHeld = false;
    let releasedBeforeDrained = false;
    let requestsToBAfterDrain = -1;
    try {
      await load.completed(LOAD_BETWEEN_STEPS);
      const { answer } = await heldRequestOn(f, "b");
      let released = false;
      b.events.once("released", () => (released = true));

      const drainedSite = f.site(mode, { backends: [f.entry("a"), f.entry("b", { state: "drain" }), f.entry("c")] });
      const applied = await applyLbSite(f.runner, drainedSite);
      t.is(applied.reloaded, mode === "reload");
      const requestsToB = b.requests;
      let settled = false;
      const waiting = waitDrained(f.runner, drainedSite, ["b"], 30_000).then((result) => {
        settled = true;
        releasedBeforeDrained = released;
        return result;
      });
      await load.completed(LOAD_BETWEEN_STEPS);
      requestsToBAfterDrain = b.requests - requestsToB;
      pendingWhileHeld = !settled;

      b.release();
      drained = await waiting;
      held = await answer;
      await load.completed(LOAD_BETWEEN_STEPS);
    } finally {
      const report = await load.stop();
      t.log(
        `${mode}: ${report.requests} requests, ${report.failed} failed, ${report.socketErrors} socket errors, ${report.retries} retries, ` +
          `answers ${JSON.stringify(report.answers)}; waitDrained ${JSON.stringify(drained)}`,
      );
      t.deepEqual(report.failures, []);
      t.is(report.failed, 0);
      if (!retry) t.is(report.socketErrors, 0);
    }
    t.is(requestsToBAfterDrain, 0, "no new request reached the drained host");
    t.true(pendingWhileHeld, `waitDrained still waiting after ${LOAD_BETWEEN_STEPS} more requests while b held one`);
    t.like(drained, { drained: true, inFlight: 0 });
    t.true(releasedBeforeDrained, "waitDrained resolved only after b answered its last request");
    t.like(held, { status: 200, body: "b", backend: b.key });
  });

  test(`${mode} mode: waitDrained gives up at its timeout with drained=false while a request is still in flight`, async (t) => {
    const f = await lbFixture(t);
    await applyLbSite(f.runner, f.site(mode));
    const { answer } = await heldRequestOn(f, "c");
    const drainedSite = f.site(mode, { backends: [f.entry("a"), f.entry("b"), f.entry("c", { state: "down" })] });
    await applyLbSite(f.runner, drainedSite);
    const result = await waitDrained(f.runner, drainedSite, ["c"], 200);
    t.false(result.drained);
    t.true(result.inFlight > 0);
    t.true(result.waitedMs >= 200);
    f.backend("c").release();
    t.like(await answer, { status: 200, body: "c" });
    t.like(await waitDrained(f.runner, drainedSite, ["c"], 10_000), { drained: true, inFlight: 0 });
  });
}

test("waitDrained refuses a host it does not know and a host that still gets new requests", async (t) => {
  const f = await lbFixture(t);
  const site = f.site("live", { backends: [f.entry("a"), f.entry("b", { state: "drain" }), f.entry("c", { weight: 0 })] });
  await applyLbSite(f.runner, site);
  await t.throwsAsync(waitDrained(f.runner, site, ["nope"], 100), { instanceOf: LbError, code: "ERR_LB_UNKNOWN_HOST" });
  const up = await t.throwsAsync(waitDrained(f.runner, site, ["b", "a"], 100), { instanceOf: LbError, code: "ERR_LB_HOST_UP" });
  t.regex(up.message, /\ba still gets new requests/);
  t.like(await waitDrained(f.runner, site, ["b", "c"], 1_000), { drained: true }, "drain and weight 0 both count as out");
});
