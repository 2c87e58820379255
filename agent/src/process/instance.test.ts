import test from "ava";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { isHealthError } from "../health/index.js";
import { isProcessError } from "./errors.js";
import { AppInstance, type AppInstanceOptions, type InstanceEvents, type InstanceState } from "./instance.js";
import { instanceRecordPath, readInstanceRecord } from "./record.js";
import { startProcess } from "./start.js";
import { appFixture, FAST_GATE, get, logShows, type AppFixture } from "./test-helpers.js";

/** Exact backoff for tests: 50ms doubling to 400ms, no jitter. */
const RESTART = { baseMs: 50, capMs: 400, resetAfterMs: 60_000, random: () => 1 };

function instance(f: AppFixture, options: Partial<AppInstanceOptions> = {}): { instance: AppInstance; states: InstanceState[] } {
  const instance = new AppInstance({
    identity: f.identity,
    spec: f.spec,
    stateDir: f.stateDir,
    logDir: f.logDir,
    health: FAST_GATE,
    stop: { signal: "SIGTERM", timeoutMs: 5000 },
    restart: RESTART,
    log: f.log,
    ...options,
  });
  const states: InstanceState[] = [];
  instance.on("transition", ({ to }) => states.push(to));
  return { instance, states };
}

function next<E extends keyof InstanceEvents>(instance: AppInstance, event: E): Promise<InstanceEvents[E][0]> {
  return once(instance, event).then(([payload]) => payload as InstanceEvents[E][0]);
}

function until(instance: AppInstance, state: InstanceState): Promise<void> {
  if (instance.state === state) return Promise.resolve();
  return new Promise((resolve) => {
    const listener = ({ to }: { to: InstanceState }) => {
      if (to !== state) return;
      instance.off("transition", listener);
      resolve();
    };
    instance.on("transition", listener);
  });
}

test("start → healthy → draining → stopping → stopped, each transition logged once with from and to", async (t) => {
  const f = await appFixture(t);
  const { instance: app, states } = instance(f);
  await app.start();
  t.is(app.state, "healthy");
  const recordPath = instanceRecordPath(f.stateDir, "geoip", "blue");
  t.is(readInstanceRecord(recordPath).pid, app.process!.pid);
  app.drain();
  const result = await app.stop();
  t.like(result, { exitCode: 0, timedOut: false });
  t.deepEqual(states, ["starting", "healthy", "draining", "stopping", "stopped"]);
  t.deepEqual(
    f.logLines.filter((line) => line.includes("instance ")).map((line) => /from=(\w+) to=(\w+)/.exec(line)!.slice(1).join(">")),
    ["stopped>starting", "starting>healthy", "healthy>draining", "draining>stopping", "stopping>stopped"],
  );
  t.false(existsSync(recordPath), "the record is deleted with the instance");
});

test("a call in the wrong state is refused with ERR_INSTANCE_STATE naming the state", async (t) => {
  const f = await appFixture(t);
  const { instance: app } = instance(f);
  const drain = t.throws(() => app.drain());
  t.true(isProcessError(drain, "ERR_INSTANCE_STATE"));
  t.is(drain.message, "cannot drain geoip blue while it is stopped");
  await app.start();
  const again = await t.throwsAsync(app.start());
  t.is(again.message, "cannot start geoip blue while it is healthy; stop it first");
  t.like(await app.stop(), { exitCode: 0 });
  t.like(await app.stop(), { timedOut: false, durationMs: 0 }, "stop is idempotent");
});

test("--crash-at-start: start() rejects with ERR_PROCESS_EXITED_EARLY and the exit code; no restart", async (t) => {
  const f = await appFixture(t, ["--crash-at-start"]);
  const { instance: app, states } = instance(f, { health: { ...FAST_GATE, deadlineMs: 30_000 } });
  let restarts = 0;
  app.on("restart", () => restarts++);
  const error = await t.throwsAsync(app.start());
  t.true(isProcessError(error, "ERR_PROCESS_EXITED_EARLY"), String(error));
  if (!isProcessError(error)) return;
  t.is(error.exitCode, 1);
  t.is(error.logPath, `${f.logDir}/geoip/blue.log`);
  t.regex(error.message, /^geoip blue \(release v1, pid \d+\) exited with code 1 before it passed its health gate; read its log: /);
  t.deepEqual(states, ["starting", "crashed"]);
  t.is(restarts, 0);
  await app.stop();
  t.is(app.state, "stopped");
});

test("a gate that runs out leaves the instance unhealthy and running, for the caller to stop", async (t) => {
  const f = await appFixture(t, ["--fail-health"]);
  const { instance: app } = instance(f, { health: { ...FAST_GATE, deadlineMs: 500 } });
  const error = await t.throwsAsync(app.start());
  t.true(isHealthError(error, "ERR_HEALTH_DEADLINE"));
  t.is(app.state, "unhealthy");
  t.true(app.process!.isAlive());
  t.like(await app.stop(), { exitCode: 0 });
});

test("a crash in service is restarted with exponential backoff, then stop() ends it for good", async (t) => {
  const f = await appFixture(t);
  const { instance: app } = instance(f);
  await app.start();
  const first = app.process!.pid;

  const exit = next(app, "exit");
  const restart = next(app, "restart");
  process.kill(first, "SIGKILL");
  t.deepEqual(await exit, { pid: first, requested: false, signal: "SIGKILL" });
  t.deepEqual(await restart, { attempt: 1, delayMs: 50 });
  t.is(app.state, "crashed");
  await until(app, "healthy");
  const second = app.process!.pid;
  t.not(second, first);
  t.is(readInstanceRecord(instanceRecordPath(f.stateDir, "geoip", "blue")).pid, second);
  t.is(JSON.parse((await get(f.identity.address, f.identity.port, "/api/v1/geoip/1.1.1.1")).body).pid, second);

  const again = next(app, "restart");
  process.kill(second, "SIGKILL");
  t.deepEqual(await again, { attempt: 2, delayMs: 100 });
  await until(app, "healthy");

  const stopExit = next(app, "exit");
  t.like(await app.stop(), { exitCode: 0, timedOut: false });
  t.like(await stopExit, { requested: true, exitCode: 0 });
  t.is(app.state, "stopped");
});

test("a crash loop backs off up to the cap: 50, 100, 200, 400, 400 ms", async (t) => {
  const f = await appFixture(t);
  const spec = { ...f.spec, args: [...f.spec.args] };
  const { instance: app } = instance(f, { spec });
  await app.start();
  // From now on every restart crashes at once, as if the release on disk broke.
  spec.args.push("--crash-at-start");
  const delays: number[] = [];
  const fifth = new Promise<void>((resolve) =>
    app.on("restart", ({ delayMs }) => {
      delays.push(delayMs);
      if (delays.length === 5) resolve();
    }),
  );
  process.kill(app.process!.pid, "SIGKILL");
  await fifth;
  t.deepEqual(delays, [50, 100, 200, 400, 400]);
  await app.stop();
  t.is(app.state, "stopped");
});

test("a crash while draining is not restarted: that color is on its way out", async (t) => {
  const f = await appFixture(t);
  const { instance: app, states } = instance(f);
  await app.start();
  app.drain();
  let restarts = 0;
  app.on("restart", () => restarts++);
  process.kill(app.process!.pid, "SIGKILL");
  await until(app, "crashed");
  t.is(restarts, 0);
  t.false(existsSync(instanceRecordPath(f.stateDir, "geoip", "blue")));
  await app.stop();
  t.deepEqual(states, ["starting", "healthy", "draining", "crashed", "stopped"]);
});

test("stop() during the health gate cancels it: start() rejects with ERR_INSTANCE_STATE", async (t) => {
  const f = await appFixture(t, ["--slow-start", "60000"]);
  const { instance: app, states } = instance(f);
  const starting = app.start();
  // Stop once the app has its SIGTERM handler, so it exits 0 rather than on the signal.
  await logShows(`${f.logDir}/geoip/blue.log`, /waiting 60000ms before listening/);
  t.is(app.state, "starting");
  const stopped = app.stop();
  const error = await t.throwsAsync(starting);
  t.true(isProcessError(error, "ERR_INSTANCE_STATE"), String(error));
  t.like(await stopped, { exitCode: 0, timedOut: false });
  t.deepEqual(states, ["starting", "stopping", "stopped"]);
});

test("adopt(): a live record is taken over and gated; a crash afterwards is restarted", async (t) => {
  const f = await appFixture(t);
  const earlier = await startProcess(f.spec, f.identity, f);
  earlier.release();
  const { instance: app, states } = instance(f);
  t.true(await app.adopt(readInstanceRecord(instanceRecordPath(f.stateDir, "geoip", "blue"))));
  t.is(app.state, "healthy");
  t.is(app.process!.pid, earlier.pid);
  t.false(app.process!.isChild);

  const restart = next(app, "restart");
  const exit = next(app, "exit");
  process.kill(earlier.pid, "SIGKILL");
  // Not our child: the exit is seen by polling /proc, and its status is unknown.
  t.deepEqual(await exit, { pid: earlier.pid, requested: false });
  t.deepEqual(await restart, { attempt: 1, delayMs: 50 });
  await until(app, "healthy");
  t.true(app.process!.isChild);
  await app.stop();
  t.deepEqual(states, ["starting", "healthy", "crashed", "starting", "healthy", "stopping", "stopped"]);
});

test("adopt(): a stale record is refused and deleted", async (t) => {
  const f = await appFixture(t);
  const earlier = await startProcess(f.spec, f.identity, f);
  const record = earlier.record;
  const { instance: app, states } = instance(f);
  t.false(await app.adopt({ ...record, startTime: record.startTime + 1 }));
  t.is(app.state, "stopped");
  t.deepEqual(states, []);
  t.false(existsSync(instanceRecordPath(f.stateDir, "geoip", "blue")));
  t.true(f.logLines.some((line) => line.includes("stale instance record, not adopted") && line.includes("the pid was reused")));
});

test("stop() from a transition listener while a restart begins leaves nothing running", async (t) => {
  const f = await appFixture(t);
  const { instance: app, states } = instance(f);
  await app.start();
  const first = app.process!.pid;
  const stopped = new Promise<unknown>((resolve) =>
    app.on("transition", ({ from, to }) => {
      if (from === "crashed" && to === "starting") resolve(app.stop());
    }),
  );
  process.kill(first, "SIGKILL");
  t.like(await stopped, { timedOut: false, durationMs: 0 });
  t.is(app.state, "stopped");
  t.is(app.process, undefined);
  t.false(existsSync(instanceRecordPath(f.stateDir, "geoip", "blue")), "no new instance was started");
  t.deepEqual(states, ["starting", "healthy", "crashed", "starting", "stopping", "stopped"]);
});
