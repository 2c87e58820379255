// The limits on this machine's real cgroups (v1 or v2, whichever it has): the
// example app is started through the wrapper exactly as the agent would, and
// the kernel, not a fake tree, decides. A host without usable cgroups fails
// these tests with the reason: they must not pass by skipping.
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isHealthError, waitHealthy } from "../health/index.js";
import { startProcess, stopProcess, type Color } from "../process/index.js";
import { appFixture, FAST_GATE, get } from "../process/test-helpers.js";
import { applyLimits, removeLimits, type ApplyLimitsRequest } from "./apply.js";
import { detectCgroups } from "./detect.js";
import type { LimitHandle } from "./handle.js";
import { describeExit, wasOomKilled } from "./oom.js";
import { wrapInCgroup } from "./wrap.js";

const MiB = 1024 * 1024;
const support = detectCgroups();

/** Fails the test, with the detection's reason, unless this host can enforce memory and cpu limits. */
function requireCgroups(t: ExecutionContext): boolean {
  if (support.memory && support.cpu) return true;
  t.fail(`these tests need cgroup memory and cpu controllers the test can write (run as root on the host): limits unsupported here: ${support.why ?? "unknown"}`);
  return false;
}

/**
 * Applies limits under a name of this test's own (tests and other checkouts
 * run at the same time); teardown kills whatever is still inside and removes
 * the cgroups.
 */
async function limited(t: ExecutionContext, request: Omit<ApplyLimitsRequest, "app" | "color">, color: Color = "blue"): Promise<LimitHandle> {
  const app = `limits-test-${randomBytes(4).toString("hex")}`;
  const handle = await applyLimits(support, { app, color, ...request });
  t.teardown(async () => {
    for (const dir of handle.dirs) for (const pid of procsOf(dir)) kill(pid);
    await removeLimits(handle, 5000);
  });
  return handle;
}

function procsOf(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function kill(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}

/** The cgroup path of `pid` in the hierarchy that holds `controller` (v2: the one unified line). */
function cgroupOf(pid: number, controller: "memory" | "cpu"): string | undefined {
  const lines = readFileSync(`/proc/${pid}/cgroup`, "utf8").trim().split("\n");
  for (const line of lines) {
    const [, controllers, path] = line.split(":");
    if (support.version === 2 ? controllers === "" : controllers!.split(",").includes(controller)) return path;
  }
  return undefined;
}

test("this host offers memory and cpu limits", (t) => {
  if (!requireCgroups(t)) return;
  t.true(support.version === 1 || support.version === 2);
  t.log(`cgroup v${support.version}: memory at ${support.memoryRoot}, cpu at ${support.cpuRoot}`);
});

test("an app that allocates past its memory limit is killed by the kernel, and the exit is named the memory limit", async (t) => {
  if (!requireCgroups(t)) return;
  const handle = await limited(t, { memoryBytes: 64 * MiB });
  const f = await appFixture(t, ["--hog-memory", "200"]);
  const proc = await startProcess(wrapInCgroup(f.spec, handle).spec, f.identity, f);
  // What the deploy sees today: the health gate fails fast because the process died.
  const gate = await t.throwsAsync(waitHealthy({ ...f.identity, ...FAST_GATE, isAlive: () => proc.isAlive() }));
  t.true(isHealthError(gate, "ERR_PROCESS_EXITED_EARLY"), String(gate));
  const exit = await proc.exited();
  t.deepEqual(exit, { signal: "SIGKILL" });
  t.true(wasOomKilled(handle));
  t.is(describeExit(handle, exit), "memory limit exceeded (limit 64 MiB)");
  t.notRegex(readFileSync(proc.record.logPath, "utf8"), /holding 200 MiB/, "it never got to hold its 200 MiB");
  const removed = await removeLimits(handle);
  t.deepEqual(removed.left, []);
  for (const dir of handle.dirs) t.false(existsSync(dir));
});

test("an app within its memory limit stays up and healthy, inside its cgroup from its first instruction", async (t) => {
  if (!requireCgroups(t)) return;
  const handle = await limited(t, { memoryBytes: 128 * MiB }, "green");
  const f = await appFixture(t, ["--hog-memory", "16"], "green");
  const wrapped = wrapInCgroup(f.spec, handle);
  const proc = await startProcess(wrapped.spec, f.identity, f);
  await waitHealthy({ ...f.identity, ...FAST_GATE, isAlive: () => proc.isAlive() });
  const answer = await get(f.identity.address, f.identity.port, "/health_check");
  t.is(answer.status, 200);
  t.is(cgroupOf(proc.pid, "memory"), `/cutover/${handle.name}`);
  t.deepEqual(procsOf(handle.memoryDir!), [proc.pid]);
  const limitFile = support.version === 2 ? "memory.max" : "memory.limit_in_bytes";
  t.is(readFileSync(join(handle.memoryDir!, limitFile), "utf8").trim(), String(128 * MiB));
  t.deepEqual(readFileSync(`/proc/${proc.pid}/cmdline`, "utf8").split("\0").slice(0, -1), wrapped.spec.shownArgv, "once exec'd, the process shows the app's own argv");
  t.false(wasOomKilled(handle));
  const stopped = await stopProcess(proc, { signal: "SIGTERM", timeoutMs: 5000 });
  t.like(stopped, { exitCode: 0, timedOut: false });
  t.is(describeExit(handle, stopped), undefined);
  t.deepEqual((await removeLimits(handle)).left, []);
});

test("a CPU limit is written where the kernel reads it", async (t) => {
  if (!requireCgroups(t)) return;
  const handle = await limited(t, { cpuCores: 0.5 });
  const dir = handle.cpuDir!;
  if (support.version === 2) {
    t.is(readFileSync(join(dir, "cpu.max"), "utf8").trim(), "50000 100000");
  } else {
    t.is(readFileSync(join(dir, "cpu.cfs_quota_us"), "utf8").trim(), "50000");
    t.is(readFileSync(join(dir, "cpu.cfs_period_us"), "utf8").trim(), "100000");
  }
});

// 0.05 cores: this VM accounts a busy loop only ~0.3 cores of CPU time, so 0.5 would never be reached here.
test("a CPU limit throttles a busy process started through the wrapper", async (t) => {
  if (!requireCgroups(t)) return;
  const handle = await limited(t, { cpuCores: 0.05 });
  const busy = { file: process.execPath, args: ["-e", "const end = Date.now() + 500; while (Date.now() < end);"], env: {}, cwd: "/" };
  const { spec } = wrapInCgroup(busy, handle);
  const child = spawn(spec.file, spec.args, { env: spec.env, cwd: spec.cwd, stdio: "ignore" });
  t.teardown(() => kill(child.pid!));
  const [code] = (await once(child, "exit")) as [number | null];
  t.is(code, 0);
  const stat = Object.fromEntries(
    readFileSync(join(handle.cpuDir!, "cpu.stat"), "utf8")
      .trim()
      .split("\n")
      .map((line) => line.split(" ") as [string, string]),
  );
  t.true(Number(stat.nr_throttled) > 0, `cpu.stat shows no throttling: ${JSON.stringify(stat)}`);
});

test("removing an old instance's limits late does not take the cgroup the next instance of the color already has", async (t) => {
  if (!requireCgroups(t)) return;
  const first = await limited(t, { memoryBytes: 64 * MiB, cpuCores: 1 });
  const next = await applyLimits(support, { app: first.app, color: first.color, memoryBytes: 96 * MiB, cpuCores: 1 });
  t.deepEqual(next.dirs, first.dirs);
  t.notDeepEqual(next.inodes, first.inodes, "the empty leftover was made afresh");
  t.deepEqual((await removeLimits(first, 0)).left, []);
  for (const dir of next.dirs) t.true(existsSync(dir), dir);
  t.deepEqual((await removeLimits(next)).left, []);
});

test("limits applied after the start move the process and the rest of its process group", async (t) => {
  if (!requireCgroups(t)) return;
  const child = spawn("/bin/sh", ["-c", "sleep 30 & exec sleep 31"], { detached: true, stdio: "ignore" });
  const pid = child.pid!;
  t.teardown(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Gone already.
    }
  });
  let members: number[] = [];
  for (let i = 0; i < 100 && members.length < 2; i++) {
    members = groupMembers(pid);
    await sleep(10);
  }
  t.is(members.length, 2, "the shell's background child is in its group");
  const handle = await limited(t, { memoryBytes: 64 * MiB, cpuCores: 1, pid });
  for (const dir of handle.dirs) t.deepEqual(procsOf(dir).sort(), members.sort(), dir);
});

function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]) === pgid) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}
