import { readFileSync } from "node:fs";

// What the agent reads about a process from /proc (Linux): enough to tell a
// live instance from a zombie or from another program that got its pid.

export interface ProcStat {
  /** One letter: R running, S sleeping, D disk wait, Z zombie, X dead, ... */
  state: string;
  ppid: number;
  pgrp: number;
  /** Field 22: clock ticks after boot when the process started; with the pid, its identity. */
  startTime: number;
}

/** /proc/<pid>/stat, or undefined when there is no such process. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // Field 2 is "(comm)" and comm may hold spaces and parentheses: split after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(fields[19]);
  if (!fields[0] || !Number.isSafeInteger(startTime)) return undefined;
  return { state: fields[0], ppid: Number(fields[1]), pgrp: Number(fields[2]), startTime };
}

/** True for a process that has ended but was not reaped yet: it holds a pid, nothing else. */
export function isZombie(stat: ProcStat): boolean {
  return stat.state === "Z" || stat.state === "X";
}

/** argv of a process, or undefined when gone; empty for a zombie. */
export function readCmdline(pid: number): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return undefined;
  }
  if (text === "") return [];
  return (text.endsWith("\0") ? text.slice(0, -1) : text).split("\0");
}

/** Resident memory, bytes; 0 when the process is gone or unreadable. */
export function readRssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
