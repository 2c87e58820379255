import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LimitHandle } from "./handle.js";
import { formatBytes } from "./values.js";

/** Which kernel counter told of OOM kills: v2 memory.events, v1 memory.oom_control (4.13+), else v1 memory.failcnt. */
export type OomCounterSource = "memory.events" | "memory.oom_control" | "memory.failcnt";

export interface OomCounter {
  source: OomCounterSource;
  count: number;
}

/** Parses "key value" lines (memory.events, memory.oom_control, memory.stat) into numbers. */
export function parseKeyedCounters(text: string): Record<string, number> {
  const counters: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) counters[key] = Number(value);
  }
  return counters;
}

/**
 * The OOM-kill count from the files' text (pure): v2 `oom_kill` plus
 * `oom_group_kill` of memory.events; v1 `oom_kill` of memory.oom_control; on
 * v1 kernels before 4.13, which lack it, memory.failcnt (limit hits, not kills).
 */
export function oomCounterFrom(version: 1 | 2, files: { events?: string; oomControl?: string; failcnt?: string }): OomCounter | undefined {
  if (version === 2) {
    if (files.events === undefined) return undefined;
    const events = parseKeyedCounters(files.events);
    return { source: "memory.events", count: (events.oom_kill ?? 0) + (events.oom_group_kill ?? 0) };
  }
  if (files.oomControl !== undefined) {
    const control = parseKeyedCounters(files.oomControl);
    if (control.oom_kill !== undefined) return { source: "memory.oom_control", count: control.oom_kill };
  }
  if (files.failcnt !== undefined && /^\d+\s*$/.test(files.failcnt)) return { source: "memory.failcnt", count: Number(files.failcnt.trim()) };
  return undefined;
}

/** The memory cgroup's OOM-kill counter now; undefined without a memory cgroup or once it is removed. */
export function readOomCounter(handle: Pick<LimitHandle, "version" | "memoryDir">): OomCounter | undefined {
  const dir = handle.memoryDir;
  if (!dir) return undefined;
  if (handle.version === 2) return oomCounterFrom(2, { events: readOrUndefined(join(dir, "memory.events")) });
  return oomCounterFrom(1, { oomControl: readOrUndefined(join(dir, "memory.oom_control")), failcnt: readOrUndefined(join(dir, "memory.failcnt")) });
}

/**
 * True when the kernel killed a process of the instance for going over its
 * memory limit since the limits were applied. Read it before removeLimits:
 * the counters go with the cgroup. On v1 kernels without an oom_kill counter
 * this is "the limit was hit"; describeExit then also asks for a SIGKILL.
 */
export function wasOomKilled(handle: LimitHandle): boolean {
  const counter = readOomCounter(handle);
  return counter !== undefined && counter.count > handle.oomKillsBefore;
}

/**
 * Why the instance ended, when its limits explain it: "memory limit exceeded
 * (limit 64 MiB)" for a process killed by the OOM killer of its cgroup.
 * `exit` is how the main process ended; both fields absent when unknown (an
 * adopted process). Undefined when the limits had nothing to do with it.
 */
export function describeExit(handle: LimitHandle, exit: { signal?: string; exitCode?: number }): string | undefined {
  if (handle.memoryBytes === undefined) return undefined;
  const counter = readOomCounter(handle);
  if (!counter || counter.count <= handle.oomKillsBefore) return undefined;
  const limit = `memory limit exceeded (limit ${formatBytes(handle.memoryBytes)})`;
  const unknown = exit.signal === undefined && exit.exitCode === undefined;
  if (exit.signal === "SIGKILL" || (unknown && counter.source !== "memory.failcnt")) return limit;
  // failcnt only says the limit was reached, and the kernel then reclaims or kills: only a SIGKILL proves a kill.
  if (counter.source === "memory.failcnt") return undefined;
  // The kill hit another process of the instance (a worker); the main one ended on its own after that.
  const how = exit.signal !== undefined ? `signal ${exit.signal}` : exit.exitCode !== undefined ? `exit code ${exit.exitCode}` : "an unknown cause";
  return `${limit}: the kernel killed a process of the instance, which then ended with ${how}`;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
