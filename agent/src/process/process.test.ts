import test from "ava";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { pathToFileURL } from "node:url";
import { isHealthError, waitHealthy } from "../health/index.js";
import { adoptProcess } from "./app-process.js";
import { isProcessError } from "./errors.js";
import { readProcStat } from "./proc.js";
import { instanceRecordPath, readInstanceRecord } from "./record.js";
import { startProcess } from "./start.js";
import { stopProcess } from "./stop.js";
import { appFixture, FAST_GATE, get } from "./test-helpers.js";

const GRACEFUL = { signal: "SIGTERM", timeoutMs: 5000 } as const;

test("start, pass the health gate, serve, then stop gracefully on SIGTERM with exit code 0", async (t) => {
  const f = await appFixture(t, ["--version", "v7"]);
  const proc = await startProcess(f.spec, f.identity, f);
  const { address, port } = f.identity;
  await waitHealthy({ address, port, ...FAST_GATE, isAlive: () => proc.isAlive() });

  const answer = await get(address, port, "/api/v1/geoip/1.2.3.4");
  t.is(answer.status, 200);
  t.deepEqual(JSON.parse(answer.body), { ip: "1.2.3.4", country: "KR", version: "v7", color: "blue", pid: proc.pid });
  t.is(answer.headers["x-app-version"], "v7");
  t.is(answer.headers["x-app-color"], "blue");

  const { exitCode, signal, timedOut, durationMs } = await stopProcess(proc, GRACEFUL);
  t.is(exitCode, 0);
  t.is(signal, undefined);
  t.false(timedOut);
  t.true(durationMs < 5000);
  t.is(readProcStat(proc.pid), undefined);
  const log = readFileSync(join(f.logDir, "geoip", "blue.log"), "utf8");
  t.true(log.includes(`listening on ${address}:${port} (http)`), log);
  t.regex(log, /GET \/api\/v1\/geoip\/1\.2\.3\.4 200/);
  t.regex(log, /SIGTERM: stopping/);
});

test("the record holds pid, start time and argv, in <stateDir>/instances/<app>/<color>.json", async (t) => {
  const f = await appFixture(t, [], "green", "2026.11.27+build.5");
  const before = Date.now();
  const proc = await startProcess(f.spec, f.identity, f);
  const record = readInstanceRecord(join(f.stateDir, "instances", "geoip", "green.json"));
  t.deepEqual(record, proc.record);
  t.like(record, {
    pid: proc.pid,
    startTime: readProcStat(proc.pid)!.startTime,
    cmdline: [process.execPath, ...f.spec.args],
    app: "geoip",
    color: "green",
    release: "2026.11.27+build.5",
    port: f.identity.port,
    address: f.identity.address,
    logPath: join(f.logDir, "geoip", "green.log"),
  });
  t.true(record.startedAtMs >= before && record.startedAtMs <= Date.now());
  await stopProcess(proc, GRACEFUL);
});

test("an app that ignores SIGTERM is SIGKILLed after the stop timeout", async (t) => {
  const f = await appFixture(t, ["--ignore-sigterm"]);
  const proc = await startProcess(f.spec, f.identity, f);
  const { address, port } = f.identity;
  await waitHealthy({ address, port, ...FAST_GATE });
  const { exitCode, signal, timedOut, durationMs } = await stopProcess(proc, { signal: "SIGTERM", timeoutMs: 300 });
  t.is(exitCode, undefined);
  t.is(signal, "SIGKILL");
  t.true(timedOut);
  t.true(durationMs >= 295 && durationMs < 2000, `took ${durationMs}ms`);
  t.regex(readFileSync(proc.record.logPath, "utf8"), /ignoring SIGTERM/);
});

test("--crash-at-start fails the health gate fast with ERR_PROCESS_EXITED_EARLY, well before the deadline", async (t) => {
  const f = await appFixture(t, ["--crash-at-start"]);
  const proc = await startProcess(f.spec, f.identity, f);
  const { address, port } = f.identity;
  const started = performance.now();
  const error = await t.throwsAsync(waitHealthy({ address, port, ...FAST_GATE, deadlineMs: 30_000, isAlive: () => proc.isAlive() }));
  t.true(isHealthError(error, "ERR_PROCESS_EXITED_EARLY"), String(error));
  t.true(performance.now() - started < 3000);
  t.deepEqual(await proc.exited(), { exitCode: 1 });
});

test("--never-listen runs into the deadline: ERR_HEALTH_DEADLINE, connection refused", async (t) => {
  const f = await appFixture(t, ["--never-listen"]);
  const proc = await startProcess(f.spec, f.identity, f);
  const { address, port } = f.identity;
  const error = await t.throwsAsync(waitHealthy({ address, port, ...FAST_GATE, deadlineMs: 800, isAlive: () => proc.isAlive() }));
  t.true(isHealthError(error, "ERR_HEALTH_DEADLINE"), String(error));
  t.is(isHealthError(error) && error.lastReason, `GET http://${address}:${port}/health_check: connect ECONNREFUSED ${address}:${port}`);
  t.true(proc.isAlive());
  t.like(await stopProcess(proc, GRACEFUL), { exitCode: 0, timedOut: false });
});

test("--fail-health runs into the deadline: ERR_HEALTH_DEADLINE with the 503 in the reason", async (t) => {
  const f = await appFixture(t, ["--fail-health"]);
  const proc = await startProcess(f.spec, f.identity, f);
  const { address, port } = f.identity;
  const error = await t.throwsAsync(waitHealthy({ address, port, ...FAST_GATE, deadlineMs: 800, isAlive: () => proc.isAlive() }));
  t.true(isHealthError(error, "ERR_HEALTH_DEADLINE"), String(error));
  t.is(isHealthError(error) && error.lastReason, `GET http://${address}:${port}/health_check answered 503, expected 200`);
  t.regex((error as Error).message, /answered 503, expected 200$/);
  await stopProcess(proc, GRACEFUL);
});

test("adoption: a process started by an earlier handle is found again from its record and stopped", async (t) => {
  const f = await appFixture(t);
  const { pid } = await startProcess(f.spec, f.identity, f);
  const record = readInstanceRecord(instanceRecordPath(f.stateDir, "geoip", "blue"));
  const adopted = adoptProcess(record);
  t.true(adopted.alive);
  if (!adopted.alive) return;
  t.is(adopted.process.pid, pid);
  t.false(adopted.process.isChild);
  t.true(adopted.process.isAlive());
  const { address, port } = f.identity;
  await waitHealthy({ address, port, ...FAST_GATE, isAlive: () => adopted.process.isAlive() });
  // Not our child: the exit is seen in /proc, its code is unknown.
  t.deepEqual(await stopProcess(adopted.process, GRACEFUL).then(({ durationMs, ...rest }) => rest), { timedOut: false });
  t.false(adopted.process.isAlive());
});

test("a record whose pid was reused (other start time, or another program) is not adopted", async (t) => {
  const f = await appFixture(t);
  const proc = await startProcess(f.spec, f.identity, f);
  const record = proc.record;

  t.deepEqual(adoptProcess({ ...record, startTime: record.startTime + 1 }), {
    alive: false,
    reason: `pid ${record.pid} started at tick ${record.startTime}, not ${record.startTime + 1} as recorded: the pid was reused`,
  });
  // This test's own process: a live pid with the same start-time check passing, but another argv.
  const self = { ...record, pid: process.pid, startTime: readProcStat(process.pid)!.startTime };
  const other = adoptProcess(self);
  t.false(other.alive);
  t.regex(!other.alive ? other.reason : "", new RegExp(`^pid ${process.pid} runs \\[.*\\], not \\[.*\\] as recorded$`));

  await stopProcess(proc, GRACEFUL);
  t.deepEqual(adoptProcess(record), { alive: false, reason: `pid ${record.pid} is gone` });
});

test("the process survives the death of the agent that spawned it, and a new agent adopts it", async (t) => {
  const f = await appFixture(t);
  const spawner = join(f.root, "spawner.mjs");
  const processModule = pathToFileURL(join(import.meta.dirname, "index.js")).href;
  writeFileSync(
    spawner,
    `import { startProcess } from ${JSON.stringify(processModule)};
const [spec, identity, options] = JSON.parse(process.argv[2]);
const proc = await startProcess(spec, identity, options);
console.log(JSON.stringify({ pid: proc.pid, parent: process.pid }));
// No process.exit: the spawner must be able to end on its own while the app runs.
`,
  );
  const args = JSON.stringify([f.spec, f.identity, { stateDir: f.stateDir, logDir: f.logDir }]);
  const { stdout } = await promisify(execFile)(process.execPath, [spawner, args], { timeout: 10_000 });
  const { pid, parent } = JSON.parse(stdout) as { pid: number; parent: number };
  t.is(readProcStat(parent), undefined, "the spawner has exited");
  t.not(readProcStat(pid)?.ppid, parent);

  const adopted = adoptProcess(readInstanceRecord(instanceRecordPath(f.stateDir, "geoip", "blue")));
  t.true(adopted.alive);
  if (!adopted.alive) return;
  const { address, port } = f.identity;
  await waitHealthy({ address, port, ...FAST_GATE, isAlive: () => adopted.process.isAlive() });
  t.is(JSON.parse((await get(address, port, "/api/v1/geoip/10.0.0.1")).body).pid, pid);
  t.like(await stopProcess(adopted.process, GRACEFUL), { timedOut: false });
  t.false(adopted.process.isAlive());
});

test("a command that does not exist is ERR_PROCESS_SPAWN_FAILED naming it, and leaves no record", async (t) => {
  const f = await appFixture(t);
  const error = await t.throwsAsync(startProcess({ ...f.spec, file: "no-such-program-cutover" }, f.identity, f));
  t.true(isProcessError(error, "ERR_PROCESS_SPAWN_FAILED"), String(error));
  t.true((error as Error).message.startsWith("cannot start geoip blue (release v1): spawn no-such-program-cutover ENOENT (is no-such-program-cutover installed"), (error as Error).message);
  t.false(existsSync(instanceRecordPath(f.stateDir, "geoip", "blue")));
});

test("a missing working directory is ERR_PROCESS_SPAWN_FAILED saying so", async (t) => {
  const f = await appFixture(t);
  const error = await t.throwsAsync(startProcess({ ...f.spec, cwd: join(f.root, "nope") }, f.identity, f));
  t.true(isProcessError(error, "ERR_PROCESS_SPAWN_FAILED"));
  t.is((error as Error).message, `cannot start geoip blue (release v1): its working directory ${join(f.root, "nope")} does not exist`);
});

test("run.user: the app runs with that account's uid and gid", async (t) => {
  const f = await appFixture(t);
  const proc = await startProcess({ ...f.spec, uid: 65534, gid: 65534 }, f.identity, f);
  const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
  t.regex(status, /^Uid:\t65534\t65534\t65534\t65534$/m);
  t.regex(status, /^Gid:\t65534\t65534\t65534\t65534$/m);
  const { address, port } = f.identity;
  await waitHealthy({ address, port, ...FAST_GATE, isAlive: () => proc.isAlive() });
  t.like(await stopProcess(proc, GRACEFUL), { exitCode: 0 });
});

test("the instance log is rotated at start once it is over the size limit", async (t) => {
  const f = await appFixture(t);
  const logPath = join(f.logDir, "geoip", "blue.log");
  const rotation = { maxBytes: 1000, keep: 2 };
  let proc = await startProcess(f.spec, f.identity, { ...f, logRotation: rotation });
  await stopProcess(proc, GRACEFUL);
  const first = readFileSync(logPath, "utf8");
  writeFileSync(logPath, first + "x".repeat(1000));
  proc = await startProcess(f.spec, f.identity, { ...f, logRotation: rotation });
  await stopProcess(proc, GRACEFUL);
  t.true(readFileSync(`${logPath}.1`, "utf8").startsWith(first));
  t.notRegex(readFileSync(logPath, "utf8"), /x{1000}/);
  t.false(existsSync(`${logPath}.2`));
});
