import test from "ava";
import type { CgroupSupport } from "./detect.js";
import { isLimitsError } from "./errors.js";
import { limitsPlan } from "./plan.js";

const MiB = 1024 * 1024;
const V2: CgroupSupport = { version: 2, memory: true, cpu: true, root: "/sys/fs/cgroup", memoryRoot: "/sys/fs/cgroup", cpuRoot: "/sys/fs/cgroup" };
const V1: CgroupSupport = { version: 1, memory: true, cpu: true, root: "/sys/fs/cgroup", memoryRoot: "/sys/fs/cgroup/memory", cpuRoot: "/sys/fs/cgroup/cpu,cpuacct" };

test("v2: one cgroup with memory.max, no swap and cpu.max, controllers enabled on the way down", (t) => {
  const plan = limitsPlan(V2, { app: "geoip", color: "blue", memoryBytes: 64 * MiB, cpuCores: 0.5 });
  const dir = "/sys/fs/cgroup/cutover/geoip-blue";
  t.deepEqual(plan, {
    version: 2,
    name: "geoip-blue",
    memoryDir: dir,
    cpuDir: dir,
    dirs: [dir],
    staleDirs: [],
    steps: [
      { op: "enable", path: "/sys/fs/cgroup/cgroup.subtree_control", controllers: ["memory", "cpu"] },
      { op: "mkdir", path: "/sys/fs/cgroup/cutover" },
      { op: "enable", path: "/sys/fs/cgroup/cutover/cgroup.subtree_control", controllers: ["memory", "cpu"] },
      { op: "fresh", path: dir },
      { op: "write", path: `${dir}/memory.max`, value: "67108864" },
      { op: "write", path: `${dir}/memory.swap.max`, value: "0", ifPresent: true },
      { op: "write", path: `${dir}/cpu.max`, value: "50000 100000" },
    ],
  });
});

test("v2 memory only: cpu is not enabled, and a reused cgroup's old cpu.max is reset to max", (t) => {
  const plan = limitsPlan(V2, { app: "geoip", color: "green", memoryBytes: 512 * MiB });
  const dir = "/sys/fs/cgroup/cutover/geoip-green";
  t.is(plan.memoryDir, dir);
  t.is(plan.cpuDir, undefined);
  t.deepEqual(plan.steps, [
    { op: "enable", path: "/sys/fs/cgroup/cgroup.subtree_control", controllers: ["memory"] },
    { op: "mkdir", path: "/sys/fs/cgroup/cutover" },
    { op: "enable", path: "/sys/fs/cgroup/cutover/cgroup.subtree_control", controllers: ["memory"] },
    { op: "fresh", path: dir },
    { op: "write", path: `${dir}/memory.max`, value: "536870912" },
    { op: "write", path: `${dir}/memory.swap.max`, value: "0", ifPresent: true },
    { op: "write", path: `${dir}/cpu.max`, value: "max 100000", ifPresent: true },
  ]);
});

test("v2 cpu only: memory.max and memory.swap.max are reset to max", (t) => {
  const plan = limitsPlan(V2, { app: "geoip", color: "blue", cpuCores: 2 });
  const dir = "/sys/fs/cgroup/cutover/geoip-blue";
  t.deepEqual(plan.steps.slice(4), [
    { op: "write", path: `${dir}/memory.max`, value: "max", ifPresent: true },
    { op: "write", path: `${dir}/memory.swap.max`, value: "max", ifPresent: true },
    { op: "write", path: `${dir}/cpu.max`, value: "200000 100000" },
  ]);
});

test("v1: a memory cgroup with limit_in_bytes and memsw, a cpu cgroup with CFS quota and period", (t) => {
  const plan = limitsPlan(V1, { app: "geoip", color: "blue", memoryBytes: 64 * MiB, cpuCores: 0.5 });
  const mem = "/sys/fs/cgroup/memory/cutover/geoip-blue";
  const cpu = "/sys/fs/cgroup/cpu,cpuacct/cutover/geoip-blue";
  t.deepEqual(plan, {
    version: 1,
    name: "geoip-blue",
    memoryDir: mem,
    cpuDir: cpu,
    dirs: [mem, cpu],
    staleDirs: [],
    steps: [
      { op: "mkdir", path: "/sys/fs/cgroup/memory/cutover" },
      { op: "fresh", path: mem },
      { op: "write", path: `${mem}/memory.memsw.limit_in_bytes`, value: "-1", ifPresent: true },
      { op: "write", path: `${mem}/memory.limit_in_bytes`, value: "67108864" },
      { op: "write", path: `${mem}/memory.memsw.limit_in_bytes`, value: "67108864", ifPresent: true },
      { op: "write", path: `${mem}/memory.oom_control`, value: "0", ifPresent: true },
      { op: "mkdir", path: "/sys/fs/cgroup/cpu,cpuacct/cutover" },
      { op: "fresh", path: cpu },
      { op: "write", path: `${cpu}/cpu.cfs_period_us`, value: "100000" },
      { op: "write", path: `${cpu}/cpu.cfs_quota_us`, value: "50000" },
    ],
  });
});

test("v1 memory only: no cpu cgroup, and an earlier spec's cpu cgroup is marked for removal", (t) => {
  const plan = limitsPlan(V1, { app: "geoip", color: "green", memoryBytes: 64 * MiB });
  t.deepEqual(plan.dirs, ["/sys/fs/cgroup/memory/cutover/geoip-green"]);
  t.deepEqual(plan.staleDirs, ["/sys/fs/cgroup/cpu,cpuacct/cutover/geoip-green"]);
  t.is(plan.cpuDir, undefined);
});

const unsupported = test.macro((t, support: CgroupSupport, request: { memoryBytes?: number; cpuCores?: number }, pattern: RegExp) => {
  const error = t.throws(() => limitsPlan(support, { app: "geoip", color: "blue", ...request }));
  t.true(isLimitsError(error, "ERR_LIMITS_UNSUPPORTED"), String(error));
  t.regex(error!.message, /^limits unsupported here: /);
  t.regex(error!.message, pattern);
});

test(
  "no cgroups at all: unsupported, with the detection's reason and what the spec asked",
  unsupported,
  { version: null, memory: false, cpu: false, root: "/sys/fs/cgroup", why: "/sys/fs/cgroup does not exist: no cgroup filesystem is mounted" },
  { memoryBytes: 64 * MiB },
  /does not exist: no cgroup filesystem is mounted \(the spec asks for memory 64 MiB\); remove `limits`/,
);
test(
  "a cpu limit where only memory is available: unsupported",
  unsupported,
  { ...V2, cpu: false, cpuRoot: undefined, why: 'cgroup v2 at /sys/fs/cgroup has no cpu controller (cgroup.controllers: "memory pids")' },
  { memoryBytes: 64 * MiB, cpuCores: 1 },
  /has no cpu controller .*\(the spec asks for memory 64 MiB, cpu 1\)/,
);

const invalid = test.macro((t, request: { app: string; memoryBytes?: number; cpuCores?: number }, pattern: RegExp) => {
  const error = t.throws(() => limitsPlan(V2, { color: "blue", ...request }));
  t.true(isLimitsError(error, "ERR_LIMITS_INVALID"), String(error));
  t.regex(error!.message, pattern);
});

test("an app name that could escape the cgroup tree is refused", invalid, { app: "../etc", memoryBytes: 1 }, /app name "..\/etc" is not valid/);
test("a request without limits is refused", invalid, { app: "geoip" }, /no memory or cpu limit was given/);
test("a cpu limit too small to enforce is refused", invalid, { app: "geoip", cpuCores: 0.0001 }, /below the smallest/);
