// applyLimits and removeLimits against fake cgroup trees in temp dirs: the
// files they write and the handle they return. The real kernel is in real-cgroups.test.ts.
import test from "ava";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { applyLimits, existingLimits, removeLimits } from "./apply.js";
import type { CgroupSupport } from "./detect.js";
import { isLimitsError } from "./errors.js";
import { describeExit, wasOomKilled } from "./oom.js";

const MiB = 1024 * 1024;

function tempRoot(t: import("ava").ExecutionContext): string {
  const root = mkdtempSync(join(tmpdir(), "cutover-apply-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

function v2(root: string, enabled = ""): CgroupSupport {
  writeFileSync(join(root, "cgroup.controllers"), "cpu memory pids\n");
  writeFileSync(join(root, "cgroup.subtree_control"), enabled);
  return { version: 2, memory: true, cpu: true, root, memoryRoot: root, cpuRoot: root };
}

const read = (path: string) => readFileSync(path, "utf8");

test("v2: enables what is missing, writes the limits, moves the pid in, and returns the paths", async (t) => {
  const root = tempRoot(t);
  const support = v2(root, "cpu pids\n");
  const handle = await applyLimits(support, { app: "geoip", color: "blue", memoryBytes: 64 * MiB, cpuCores: 0.5, pid: process.pid });
  const dir = join(root, "cutover", "geoip-blue");
  t.deepEqual(handle, {
    version: 2,
    app: "geoip",
    color: "blue",
    name: "geoip-blue",
    memoryDir: dir,
    memoryBytes: 64 * MiB,
    cpuDir: dir,
    cpuCores: 0.5,
    dirs: [dir],
    inodes: [statSync(dir).ino],
    oomKillsBefore: 0,
  });
  t.is(read(join(root, "cgroup.subtree_control")), "+memory", "cpu was already enabled at the root");
  t.is(read(join(root, "cutover", "cgroup.subtree_control")), "+memory +cpu");
  t.is(read(join(dir, "memory.max")), "67108864");
  t.is(read(join(dir, "cpu.max")), "50000 100000");
  t.false(existsSync(join(dir, "memory.swap.max")), "written only where the kernel offers swap accounting");
  t.is(read(join(dir, "cgroup.procs")), String(process.pid));
});

test("a leftover cgroup that still holds a process is reused: new values, and its earlier OOM kills do not count", async (t) => {
  const root = tempRoot(t);
  const support = v2(root, "cpu memory\n");
  const dir = join(root, "cutover", "geoip-green");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "cgroup.procs"), "4242\n");
  writeFileSync(join(dir, "memory.max"), "max\n");
  writeFileSync(join(dir, "memory.swap.max"), "max\n");
  writeFileSync(join(dir, "cpu.max"), "20000 100000\n");
  writeFileSync(join(dir, "memory.events"), "oom 2\noom_kill 2\noom_group_kill 0\n");
  const handle = await applyLimits(support, { app: "geoip", color: "green", memoryBytes: 128 * MiB });
  t.is(read(join(dir, "memory.max")), "134217728");
  t.is(read(join(dir, "memory.swap.max")), "0");
  t.is(read(join(dir, "cpu.max")), "max 100000", "the earlier spec's CPU limit is lifted");
  t.is(read(join(root, "cgroup.subtree_control")), "cpu memory\n", "nothing to enable at the root");
  t.is(handle.oomKillsBefore, 2);
  t.is(handle.cpuDir, undefined);
  t.false(wasOomKilled(handle));
  writeFileSync(join(dir, "memory.events"), "oom 3\noom_kill 3\noom_group_kill 0\n");
  t.true(wasOomKilled(handle));
  t.is(describeExit(handle, { signal: "SIGKILL" }), "memory limit exceeded (limit 128 MiB)");
});

test("v1: one cgroup per controller, memsw lifted then held at the limit", async (t) => {
  const root = tempRoot(t);
  const support: CgroupSupport = { version: 1, memory: true, cpu: true, root, memoryRoot: join(root, "memory"), cpuRoot: join(root, "cpu") };
  const mem = join(root, "memory", "cutover", "geoip-blue");
  mkdirSync(mem, { recursive: true });
  writeFileSync(join(mem, "cgroup.procs"), "77\n");
  writeFileSync(join(mem, "memory.memsw.limit_in_bytes"), "9223372036854771712\n");
  const handle = await applyLimits(support, { app: "geoip", color: "blue", memoryBytes: 64 * MiB, cpuCores: 2 });
  const cpu = join(root, "cpu", "cutover", "geoip-blue");
  t.deepEqual(handle.dirs, [mem, cpu]);
  t.is(read(join(mem, "memory.limit_in_bytes")), "67108864");
  t.is(read(join(mem, "memory.memsw.limit_in_bytes")), "67108864");
  t.is(read(join(cpu, "cpu.cfs_period_us")), "100000");
  t.is(read(join(cpu, "cpu.cfs_quota_us")), "200000");
  t.like(existingLimits(support, "geoip", "blue"), { version: 1, memoryDir: mem, memoryBytes: 64 * MiB, cpuDir: cpu, cpuCores: 2, dirs: [mem, cpu] });
});

test("a write the filesystem refuses is ERR_LIMITS_APPLY_FAILED naming the file", async (t) => {
  const root = tempRoot(t);
  const support = v2(root);
  rmSync(join(root, "cgroup.subtree_control"));
  mkdirSync(join(root, "cgroup.subtree_control"));
  const error = await t.throwsAsync(applyLimits(support, { app: "geoip", color: "blue", memoryBytes: 64 * MiB }));
  t.true(isLimitsError(error, "ERR_LIMITS_APPLY_FAILED"), String(error));
  t.regex(error!.message, new RegExp(`cannot write "\\+memory" to ${join(root, "cgroup.subtree_control")}: EISDIR`));
  t.false(existsSync(join(root, "cutover")));
});

test("a host without cgroups refuses limits with the reason, before touching anything", async (t) => {
  const root = tempRoot(t);
  const error = await t.throwsAsync(applyLimits({ version: null, memory: false, cpu: false, root, why: "no cgroup v2 hierarchy" }, { app: "geoip", color: "blue", memoryBytes: 64 * MiB }));
  t.true(isLimitsError(error, "ERR_LIMITS_UNSUPPORTED"));
  t.regex(error!.message, /^limits unsupported here: no cgroup v2 hierarchy/);
});

test("removeLimits deletes empty cgroups and reports busy ones after waiting, without throwing", async (t) => {
  const root = tempRoot(t);
  const empty = join(root, "empty");
  const busy = join(root, "busy");
  mkdirSync(empty);
  mkdirSync(busy);
  writeFileSync(join(busy, "cgroup.procs"), "4242\n");
  const result = await removeLimits({ dirs: [empty, busy, join(root, "gone")] }, 100);
  t.false(existsSync(empty));
  t.deepEqual(result.left, [{ dir: busy, reason: "still holds pid(s) 4242" }]);
});

test("removeLimits leaves alone a cgroup of the same name made since (the next instance of the color)", async (t) => {
  const root = tempRoot(t);
  const dir = join(root, "geoip-blue");
  mkdirSync(dir);
  const old = { dirs: [dir], inodes: [statSync(dir).ino] };
  // Made while the old one still exists, so it cannot get the old inode back; then put in its place.
  mkdirSync(join(root, "next"));
  rmSync(dir, { recursive: true });
  renameSync(join(root, "next"), dir);
  t.not(statSync(dir).ino, old.inodes[0], "the new directory has another inode");
  t.deepEqual((await removeLimits(old, 0)).left, []);
  t.true(existsSync(dir));
});
