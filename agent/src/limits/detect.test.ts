import test from "ava";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { detectCgroups } from "./detect.js";

/** A temp dir holding `files` (path → content); removed after the test. */
function fakeTree(t: import("ava").ExecutionContext, files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "cutover-cgroup-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

test("a pure v2 hierarchy with memory and cpu (Debian 12)", (t) => {
  const root = fakeTree(t, { "cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma misc\n", "cgroup.subtree_control": "cpu memory pids\n" });
  t.deepEqual(detectCgroups(root), { version: 2, memory: true, cpu: true, root, memoryRoot: root, cpuRoot: root });
});

test("v2 without the cpu controller: memory only, and why not cpu", (t) => {
  const root = fakeTree(t, { "cgroup.controllers": "memory pids\n" });
  t.deepEqual(detectCgroups(root), {
    version: 2,
    memory: true,
    cpu: false,
    root,
    memoryRoot: root,
    why: `cgroup v2 at ${root} has no cpu controller (cgroup.controllers: "memory pids")`,
  });
});

test("v1 hierarchies, cpu co-mounted with cpuacct", (t) => {
  const root = fakeTree(t, {
    "memory/memory.limit_in_bytes": "9223372036854771712\n",
    "cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
    "pids/pids.max": "max\n",
  });
  t.deepEqual(detectCgroups(root), { version: 1, memory: true, cpu: true, root, memoryRoot: join(root, "memory"), cpuRoot: join(root, "cpu,cpuacct") });
});

test("hybrid, like this dev machine: v1 controllers and a cgroup2 at unified/ without any: v1 is used", (t) => {
  const root = fakeTree(t, {
    "memory/memory.limit_in_bytes": "9223372036854771712\n",
    "cpu/cpu.cfs_quota_us": "-1\n",
    "cpuacct/cpuacct.usage": "0\n",
    "unified/cgroup.controllers": "",
  });
  t.like(detectCgroups(root), { version: 1, memory: true, cpu: true, memoryRoot: join(root, "memory"), cpuRoot: join(root, "cpu") });
});

test("v1 with memory but no cpu hierarchy: memory only, and why not cpu", (t) => {
  const root = fakeTree(t, { "memory/memory.limit_in_bytes": "9223372036854771712\n" });
  t.deepEqual(detectCgroups(root), { version: 1, memory: true, cpu: false, root, memoryRoot: join(root, "memory"), why: `no cgroup v1 cpu hierarchy under ${root}` });
});

test("a v2 root with neither memory nor cpu, and no v1: none, saying what it offers", (t) => {
  const root = fakeTree(t, { "cgroup.controllers": "io pids\n" });
  t.deepEqual(detectCgroups(root), {
    version: null,
    memory: false,
    cpu: false,
    root,
    why: `cgroup v2 at ${root} offers neither the memory nor the cpu controller (cgroup.controllers: "io pids"), and no cgroup v1 memory or cpu hierarchy is mounted under it`,
  });
});

test("an empty directory: none", (t) => {
  const root = fakeTree(t, {});
  t.deepEqual(detectCgroups(root), {
    version: null,
    memory: false,
    cpu: false,
    root,
    why: `no cgroup v2 hierarchy at ${root} (no cgroup.controllers) and no cgroup v1 memory or cpu hierarchy under it`,
  });
});

test("a missing root: none, never a throw", (t) => {
  const root = join(fakeTree(t, {}), "absent");
  t.deepEqual(detectCgroups(root), { version: null, memory: false, cpu: false, root, why: `${root} does not exist: no cgroup filesystem is mounted` });
});
