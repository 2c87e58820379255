// The supervisors over real processes (the example app): what the unit tests
// of process/supervisor.ts fake, here spawned, killed and adopted for real.
import test from "ava";
import { existsSync } from "node:fs";
import { instanceRecordPath, readInstanceRecord, startProcess, writeInstanceRecord, type Schedule } from "../process/index.js";
import { waitHealthy } from "../health/index.js";
import { appFixture, EXAMPLE_APP, FAST_GATE, get, type AppFixture } from "../process/test-helpers.js";
import type { ColorHandle } from "./process-control.js";
import { appDefinitionOf, type AppDefinition } from "./definition.js";
import { Supervisors } from "./supervisors.js";

const NO_CGROUPS = { version: null, memory: false, cpu: false, why: "not in this test", root: "/nonexistent" } as const;
const STOP = ["SIGTERM", 5000] as const;

function definition(f: AppFixture, command?: string[], health: { liveIntervalMs?: number } = {}): AppDefinition {
  return appDefinitionOf({
    name: "geoip",
    bluePort: f.identity.port,
    greenPort: f.identity.port + 1,
    proxy: { listenPort: 8080 },
    run: { command: command ?? [process.execPath, EXAMPLE_APP, "--port", "${PORT}", "--host", "${ADDRESS}"] },
    health: { kind: "http", path: "/health_check", expectStatus: 200, intervalMs: 50, timeoutMs: 1000, healthyThreshold: 2, deadlineMs: 10_000, ...health },
  });
}

function supervisors(f: AppFixture, schedule?: Schedule): Supervisors {
  // These tests are about supervision, not accounts: the app runs as the (root) test runner.
  return new Supervisors({ stateDir: f.stateDir, address: f.identity.address, log: f.log, rootApps: "allow", cgroups: NO_CGROUPS, restart: { baseMs: 50, capMs: 50, random: () => 1 }, schedule });
}

test("an instance in service is live-checked at the spec's live_interval (default 5 s), not at the gate's 50 ms interval", async (t) => {
  const f = await appFixture(t);
  // Real timers, unref'd as the agent's are; the delays asked for are what this test reads.
  const delays: number[] = [];
  const schedule: Schedule = (fn, ms) => {
    delays.push(ms);
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  };
  const s = supervisors(f, schedule);
  const slow = await s.start(definition(f, undefined, { liveIntervalMs: 3000 }), "blue", "v1", f.root);
  await s.waitHealthy(slow);
  t.deepEqual(delays, [3000], "the first live check is due a live_interval after the gate passed");
  await s.stop("geoip", "blue", ...STOP);

  const byDefault = await s.start(definition(f), "blue", "v2", f.root);
  await s.waitHealthy(byDefault);
  t.deepEqual(delays, [3000, 5000], "a Deploy without a live interval gets the default");
  await s.stop("geoip", "blue", ...STOP);
});

test("a color is started and gated, restarted after a SIGKILL in service, and stopped with its record", async (t) => {
  const f = await appFixture(t);
  const s = supervisors(f);
  const exits: string[] = [];
  s.onUnexpectedExit((_handle, cause) => exits.push(cause));
  const restarted = new Promise<ColorHandle>((resolve) => s.onRestarted(resolve));
  const first = await s.start(definition(f), "blue", "v1", f.root);
  t.is(s.report("geoip", "blue")?.state, "starting");
  await s.waitHealthy(first);
  t.like(s.report("geoip", "blue"), { state: "healthy", release: "v1", pid: first.pid });
  const record = instanceRecordPath(f.stateDir, "geoip", "blue");

  // The restart timer is unref'd (it must not hold an agent that is exiting): keep this test's loop alive until it fires.
  const keepAlive = setInterval(() => undefined, 60_000);
  process.kill(first.pid, "SIGKILL");
  const second = await restarted.finally(() => clearInterval(keepAlive));
  t.deepEqual(exits, ["signal SIGKILL"]);
  t.not(second.pid, first.pid);
  t.like(s.report("geoip", "blue"), { state: "healthy", pid: second.pid });
  t.is(readInstanceRecord(record).pid, second.pid);
  t.is(JSON.parse((await get(f.identity.address, f.identity.port, "/api/v1/geoip/1.1.1.1")).body).pid, second.pid);
  t.true(f.logLines.some((l) => /the live instance exited; restarting it app=geoip color=blue .*cause="signal SIGKILL"/.test(l)));
  t.true(f.logLines.some((l) => /the live instance is back app=geoip color=blue release=v1/.test(l)));

  await s.stop("geoip", "blue", ...STOP);
  t.is(s.report("geoip", "blue"), undefined, "a stopped color has no supervisor");
  t.is(s.running("geoip", "blue"), undefined);
  t.false(existsSync(record));
});

test("a crash before the gate rejects waitHealthy with the gate's error, and is not restarted", async (t) => {
  const f = await appFixture(t);
  const s = supervisors(f);
  const crashing = definition(f, [process.execPath, EXAMPLE_APP, "--port", "${PORT}", "--host", "${ADDRESS}", "--crash-at-start"]);
  const handle = await s.start(crashing, "blue", "v1", f.root);
  const error = await t.throwsAsync(s.waitHealthy(handle));
  t.is((error as { code?: string }).code, "ERR_PROCESS_EXITED_EARLY");
  t.like(s.report("geoip", "blue"), { state: "crashed", pid: 0 });
  await s.stop("geoip", "blue", ...STOP);
  t.is(s.report("geoip", "blue"), undefined);
});

test("adopt(): a process left by an earlier agent is supervised again (out of service: draining); a stale record is deleted", async (t) => {
  const f = await appFixture(t);
  const earlier = await startProcess(f.spec, f.identity, f);
  await waitHealthy({ ...f.identity, ...FAST_GATE, isAlive: () => earlier.isAlive() });
  earlier.release();
  const s = supervisors(f);
  const launchOf = () => ({ definition: definition(f), releaseDir: async () => f.root });
  const adopted = s.adopt("geoip", "blue", { inService: false, launchOf });
  if (!adopted) return t.fail("not adopted");
  t.like(adopted, { app: "geoip", color: "blue", release: "v1", pid: earlier.pid, port: f.identity.port });
  t.like(s.report("geoip", "blue"), { state: "draining", pid: earlier.pid });
  t.true(await s.checkOnce(adopted), "a warm color answers its health check");
  await s.stop("geoip", "blue", ...STOP);
  t.false(existsSync(instanceRecordPath(f.stateDir, "geoip", "blue")));

  const again = await startProcess(f.spec, f.identity, f);
  const record = again.record;
  await writeInstanceRecord(f.stateDir, { ...record, startTime: record.startTime + 1 });
  t.is(s.adopt("geoip", "blue", { inService: true, launchOf }), undefined);
  t.false(existsSync(instanceRecordPath(f.stateDir, "geoip", "blue")));
  t.true(f.logLines.some((l) => l.includes("stale instance record, not adopted") && l.includes("the pid was reused")));
});
