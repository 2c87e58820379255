import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LimitHandle } from "./handle.js";
import { describeExit, oomCounterFrom, parseKeyedCounters, wasOomKilled } from "./oom.js";

const MiB = 1024 * 1024;
// What the kernels write, copied from a 6.1 (v2) and a 6.x (v1) host.
const V2_EVENTS = (kills: number) => `low 0\nhigh 0\nmax 37\noom 1\noom_kill ${kills}\noom_group_kill 0\n`;
const V1_OOM_CONTROL = (kills: number) => `oom_kill_disable 0\nunder_oom 0\noom_kill ${kills}\n`;
const V1_OOM_CONTROL_PRE_4_13 = "oom_kill_disable 0\nunder_oom 0\n";

test("counters are read from key-value lines", (t) => {
  t.deepEqual(parseKeyedCounters(V2_EVENTS(2)), { low: 0, high: 0, max: 37, oom: 1, oom_kill: 2, oom_group_kill: 0 });
});

test("v2 counts oom_kill and oom_group_kill of memory.events", (t) => {
  t.deepEqual(oomCounterFrom(2, { events: V2_EVENTS(1) }), { source: "memory.events", count: 1 });
  t.deepEqual(oomCounterFrom(2, { events: "oom_kill 0\noom_group_kill 3\n" }), { source: "memory.events", count: 3 });
  t.is(oomCounterFrom(2, {}), undefined);
});

test("v1 reads oom_kill of memory.oom_control, and falls back to memory.failcnt on kernels before 4.13", (t) => {
  t.deepEqual(oomCounterFrom(1, { oomControl: V1_OOM_CONTROL(4), failcnt: "99\n" }), { source: "memory.oom_control", count: 4 });
  t.deepEqual(oomCounterFrom(1, { oomControl: V1_OOM_CONTROL_PRE_4_13, failcnt: "12\n" }), { source: "memory.failcnt", count: 12 });
  t.is(oomCounterFrom(1, {}), undefined);
});

/** A handle over a temp memory cgroup holding `files`. */
function handleWith(t: import("ava").ExecutionContext, version: 1 | 2, files: Record<string, string>, extra: Partial<LimitHandle> = {}): LimitHandle {
  const dir = mkdtempSync(join(tmpdir(), "cutover-oom-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { version, app: "geoip", color: "blue", name: "geoip-blue", memoryDir: dir, dirs: [dir], memoryBytes: 64 * MiB, oomKillsBefore: 0, ...extra };
}

test("a SIGKILL after an OOM kill in its cgroup is the memory limit", (t) => {
  const handle = handleWith(t, 2, { "memory.events": V2_EVENTS(1) });
  t.true(wasOomKilled(handle));
  t.is(describeExit(handle, { signal: "SIGKILL" }), "memory limit exceeded (limit 64 MiB)");
});

test("an adopted instance (exit unknown) with an OOM kill is the memory limit", (t) => {
  const handle = handleWith(t, 1, { "memory.oom_control": V1_OOM_CONTROL(1) });
  t.is(describeExit(handle, {}), "memory limit exceeded (limit 64 MiB)");
});

test("a worker killed by the limit, then the main process exiting on its own, still names the limit", (t) => {
  const handle = handleWith(t, 2, { "memory.events": V2_EVENTS(1) });
  t.is(describeExit(handle, { exitCode: 1 }), "memory limit exceeded (limit 64 MiB): the kernel killed a process of the instance, which then ended with exit code 1");
});

test("kills from before the limits were applied (a reused cgroup) do not count", (t) => {
  const handle = handleWith(t, 2, { "memory.events": V2_EVENTS(2) }, { oomKillsBefore: 2 });
  t.false(wasOomKilled(handle));
  t.is(describeExit(handle, { signal: "SIGKILL" }), undefined);
});

test("no OOM kill: a crash or a kill by hand is not the limit", (t) => {
  const handle = handleWith(t, 1, { "memory.oom_control": V1_OOM_CONTROL(0) });
  t.false(wasOomKilled(handle));
  t.is(describeExit(handle, { signal: "SIGKILL" }), undefined);
  t.is(describeExit(handle, { exitCode: 1 }), undefined);
});

test("old v1 kernels: the limit was hit (failcnt) and a SIGKILL followed is the limit; without the SIGKILL it is not", (t) => {
  const handle = handleWith(t, 1, { "memory.oom_control": V1_OOM_CONTROL_PRE_4_13, "memory.failcnt": "3\n" });
  t.is(describeExit(handle, { signal: "SIGKILL" }), "memory limit exceeded (limit 64 MiB)");
  t.is(describeExit(handle, { exitCode: 0 }), undefined);
  t.is(describeExit(handle, {}), undefined);
});

test("without a memory limit, or once the cgroup is removed, nothing is said", (t) => {
  const cpuOnly = handleWith(t, 2, { "memory.events": V2_EVENTS(1) }, { memoryBytes: undefined });
  t.is(describeExit(cpuOnly, { signal: "SIGKILL" }), undefined);
  const removed = handleWith(t, 2, {}, {});
  t.false(wasOomKilled(removed));
  t.is(describeExit(removed, { signal: "SIGKILL" }), undefined);
});
