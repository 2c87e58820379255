import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

// Reading nginx's processes through /proc: how a runner finds, adopts and watches a
// master it did not spawn (the agent restarts; the master does not).

export function readPidFile(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

/** The process title (nginx rewrites argv to "nginx: master process <argv>"); null when gone or a zombie. */
export function processTitle(pid: number): string | null {
  try {
    const title = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0+$/, "").replaceAll("\0", " ");
    return title === "" ? null : title;
  } catch {
    return null;
  }
}

/**
 * True when `pid` is a live nginx master, and when `conf` is given, the master of that
 * config: a recycled pid or another agent's master never passes.
 */
export function isNginxMaster(pid: number, conf?: string): boolean {
  const title = processTitle(pid);
  if (title === null || !title.startsWith("nginx: master process")) return false;
  return conf === undefined || title.includes(` -c ${conf}`);
}

/** Direct children of a process (nginx workers of a master). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(/\s+/)
      .filter((field) => field !== "")
      .map(Number);
  } catch {
    return [];
  }
}

export interface PollOptions {
  timeoutMs: number;
  intervalMs: number;
}

/**
 * Calls `check` until it returns a value or the deadline passes. Only for facts no event
 * announces (a pid file appearing, /proc changing); everything else is awaited.
 */
export async function pollUntil<T>(check: () => T | undefined, options: PollOptions): Promise<T | undefined> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (performance.now() >= deadline) return undefined;
    await sleep(options.intervalMs);
  }
}
