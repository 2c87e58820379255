import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Color } from "../process/index.js";
import type { CgroupSupport } from "./detect.js";
import { LimitsError } from "./errors.js";
import type { LimitHandle } from "./handle.js";
import { readOomCounter } from "./oom.js";
import { CGROUP_PARENT, cgroupName, limitsPlan, type CgroupStep, type LimitRequest } from "./plan.js";

export interface ApplyLimitsRequest extends LimitRequest {
  /** A process to move in now, with its process group; omit when the instance will join by itself (wrapInCgroup). */
  pid?: number;
}

/** How long removeLimits waits for a cgroup to empty (a killed process leaves it a moment after its exit). */
export const REMOVE_WAIT_MS = 1000;
const REMOVE_RETRY_MS = 50;

/**
 * Creates the instance's cgroup(s) under `cutover/` and writes its limits
 * (see limitsPlan), then moves `pid` in if given. A leftover cgroup of the
 * same name is made again when empty, else reused. Runs synchronously up to
 * its return, so nothing of the caller runs in between.
 */
export async function applyLimits(support: CgroupSupport, request: ApplyLimitsRequest): Promise<LimitHandle> {
  const plan = limitsPlan(support, request);
  for (const dir of plan.staleDirs) tryRmdir(dir);
  const created: string[] = [];
  try {
    for (const step of plan.steps) runStep(step, created);
  } catch (error) {
    for (const dir of created.reverse()) tryRmdir(dir);
    throw error;
  }
  const handle: LimitHandle = {
    version: plan.version,
    app: request.app,
    color: request.color,
    name: plan.name,
    ...(plan.memoryDir ? { memoryDir: plan.memoryDir, memoryBytes: request.memoryBytes! } : {}),
    ...(plan.cpuDir ? { cpuDir: plan.cpuDir, cpuCores: request.cpuCores! } : {}),
    dirs: plan.dirs,
    inodes: plan.dirs.map(inodeOf),
    oomKillsBefore: 0,
  };
  handle.oomKillsBefore = readOomCounter(handle)?.count ?? 0;
  if (request.pid !== undefined) attachProcess(handle, request.pid);
  return handle;
}

/**
 * Moves `pid` and the other members of its process group into each of the
 * instance's cgroups; processes they start later are born inside. A process
 * already running allocates outside its limit until this runs: prefer
 * starting it through wrapInCgroup.
 */
export function attachProcess(handle: LimitHandle, pid: number): void {
  const members = [pid, ...processGroupMembers(pid).filter((member) => member !== pid)];
  for (const dir of handle.dirs) {
    const procs = join(dir, "cgroup.procs");
    for (const member of members) {
      try {
        writeFileSync(procs, String(member));
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // Another member of the group may exit meanwhile; the leader must get in.
        if (code === "ESRCH" && member !== pid) continue;
        const why = code === "ESRCH" ? "it has already exited" : `${code ?? (error as Error).message}`;
        throw new LimitsError("ERR_LIMITS_APPLY_FAILED", `cannot move pid ${member} of ${handle.app} ${handle.color} into ${procs}: ${why}`, { cause: error });
      }
    }
  }
}

export interface RemoveLimitsResult {
  /** Cgroups still there, with why (a process still inside, an errno). */
  left: { dir: string; reason: string }[];
}

/**
 * Deletes the instance's cgroups once they are empty, waiting up to
 * `waitMs` for processes that are still on their way out. Never throws: a
 * cgroup still busy is reported in `left` and reused or removed next time.
 * A directory that is no longer the one the handle made (the next instance
 * of the color already has a new one) is left alone.
 */
export async function removeLimits(handle: Pick<LimitHandle, "dirs" | "inodes">, waitMs = REMOVE_WAIT_MS): Promise<RemoveLimitsResult> {
  const deadline = Date.now() + waitMs;
  const ours = (dir: string) => {
    const expected = handle.inodes?.[handle.dirs.indexOf(dir)];
    return expected === undefined || inodeOf(dir) === expected;
  };
  let pending = [...handle.dirs];
  const left: RemoveLimitsResult["left"] = [];
  for (;;) {
    const busy: string[] = [];
    for (const dir of pending) {
      const outcome = ours(dir) ? rmdirOutcome(dir) : "gone";
      if (outcome === "busy") busy.push(dir);
      else if (outcome !== "gone") left.push({ dir, reason: outcome });
    }
    if (busy.length === 0 || Date.now() >= deadline) {
      for (const dir of busy) left.push({ dir, reason: `still holds pid(s) ${readProcs(dir).join(", ") || "(exiting)"}` });
      return { left };
    }
    pending = busy;
    await sleep(REMOVE_RETRY_MS);
  }
}

/**
 * The limits of an instance that an earlier agent applied, found from its
 * cgroups (for an adopted instance). Kills counted before the agent restart
 * cannot be told apart from new ones, so `oomKillsBefore` is 0: applyLimits
 * makes an empty leftover afresh, so that count starts at 0 too.
 */
export function existingLimits(support: CgroupSupport, app: string, color: Color): LimitHandle | undefined {
  if (support.version === null) return undefined;
  const name = cgroupName(app, color);
  const at = (root: string | undefined) => (root && existsSync(join(root, CGROUP_PARENT, name)) ? join(root, CGROUP_PARENT, name) : undefined);
  const memoryDir = at(support.memoryRoot);
  const cpuDir = at(support.cpuRoot);
  const memoryBytes = memoryDir && readLimitNumber(join(memoryDir, support.version === 2 ? "memory.max" : "memory.limit_in_bytes"));
  const cpuCores = cpuDir && readCpuCores(support.version, cpuDir);
  const handle: LimitHandle = {
    version: support.version,
    app,
    color,
    name,
    ...(memoryDir && memoryBytes ? { memoryDir, memoryBytes } : {}),
    ...(cpuDir && cpuCores ? { cpuDir, cpuCores } : {}),
    dirs: [...new Set([memoryDir, cpuDir].filter((d): d is string => d !== undefined))],
    oomKillsBefore: 0,
  };
  handle.inodes = handle.dirs.map(inodeOf);
  return handle.dirs.length > 0 ? handle : undefined;
}

function runStep(step: CgroupStep, created: string[]): void {
  switch (step.op) {
    case "mkdir":
      if (!existsSync(step.path)) {
        guard(step.path, "create", () => mkdirSync(step.path, { recursive: true }));
        created.push(step.path);
      }
      return;
    case "fresh":
      if (existsSync(step.path) && readProcs(step.path).length === 0) tryRmdir(step.path);
      if (!existsSync(step.path)) {
        guard(step.path, "create", () => mkdirSync(step.path));
        created.push(step.path);
      }
      return;
    case "enable": {
      const enabled = readWords(step.path);
      const missing = step.controllers.filter((c) => !enabled.includes(c));
      if (missing.length > 0) guard(step.path, `write "${missing.map((c) => `+${c}`).join(" ")}" to`, () => writeFileSync(step.path, missing.map((c) => `+${c}`).join(" ")));
      return;
    }
    case "write":
      if (step.ifPresent && !existsSync(step.path)) return;
      guard(step.path, `write "${step.value}" to`, () => writeFileSync(step.path, step.value));
      return;
  }
}

/** Runs a filesystem action; its failure becomes ERR_LIMITS_APPLY_FAILED naming the file, the errno and a next step. */
function guard(path: string, what: string, action: () => void): void {
  try {
    action();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    const hint =
      code === "EACCES" || code === "EPERM" || code === "EROFS"
        ? "; the agent needs root on the host and a writable cgroup filesystem"
        : code === "EBUSY" && path.endsWith("subtree_control")
          ? "; a cgroup v2 group that holds processes cannot hand controllers to its children (is the agent in a container?)"
          : code === "EINVAL"
            ? "; the kernel refused the value"
            : "";
    throw new LimitsError("ERR_LIMITS_APPLY_FAILED", `cannot ${what} ${path}: ${(error as Error).message}${hint}`, { cause: error });
  }
}

type RmdirOutcome = "gone" | "busy" | string;

function rmdirOutcome(dir: string): RmdirOutcome {
  try {
    rmdirSync(dir);
    return "gone";
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "gone";
    if (code === "EBUSY" || code === "ENOTEMPTY") return "busy";
    return `cannot remove it: ${(error as Error).message}`;
  }
}

/** The directory's inode number; -1 when it is gone (matches no handle). */
function inodeOf(dir: string): number {
  try {
    return statSync(dir).ino;
  } catch {
    return -1;
  }
}

function tryRmdir(dir: string): void {
  rmdirOutcome(dir);
}

function readProcs(dir: string): number[] {
  return readWords(join(dir, "cgroup.procs")).map(Number).filter(Number.isSafeInteger);
}

function readWords(path: string): string[] {
  try {
    return readFileSync(path, "utf8").split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

/** A number of bytes from memory.max or memory.limit_in_bytes; undefined for "max" or v1's "no limit" (about 2^63). */
function readLimitNumber(path: string): number | undefined {
  const text = readWords(path)[0];
  if (text === undefined || !/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

function readCpuCores(version: 1 | 2, dir: string): number | undefined {
  const [quota, period] =
    version === 2 ? readWords(join(dir, "cpu.max")) : [readWords(join(dir, "cpu.cfs_quota_us"))[0], readWords(join(dir, "cpu.cfs_period_us"))[0]];
  const q = Number(quota);
  const p = Number(period);
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : undefined;
}

/** Other processes of the process group led by `pgid`, from /proc (children the app started before it was moved). */
function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return members;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isSafeInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      // Field 5 is the process group; field 2 "(comm)" may hold spaces, so count after the last ")".
      const pgrp = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (pgrp === pgid) members.push(pid);
    } catch {
      // Gone meanwhile.
    }
  }
  return members;
}
