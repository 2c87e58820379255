import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { AppProcess, ExitStatus } from "./app-process.js";
import { ProcessError } from "./errors.js";

export interface StopOptions {
  /** Signal that asks the app to stop (the spec's run.stop_signal). */
  signal: NodeJS.Signals;
  /** Time between that signal and SIGKILL, ms (run.stop_timeout). */
  timeoutMs: number;
  /** /proc poll interval while waiting for a process that is not our child, ms. */
  pollIntervalMs?: number;
}

/** One shape for every outcome, like execa's: how it ended, whether SIGKILL was needed, how long it took. */
export interface StopResult extends ExitStatus {
  timedOut: boolean;
  durationMs: number;
}

export const DEFAULT_STOP_POLL_MS = 50;
/** How long to wait for the exit after SIGKILL before reporting the process unkillable. */
export const KILL_WAIT_MS = 5000;

/**
 * Sends the stop signal to the process group, waits for the exit, and
 * SIGKILLs the group after `timeoutMs`. Resolves immediately when the process
 * is already gone. Rejects (ERR_PROCESS_STOP_FAILED) only if even SIGKILL did
 * not end it.
 */
export async function stopProcess(proc: AppProcess, options: StopOptions): Promise<StopResult> {
  const started = performance.now();
  const result = (timedOut: boolean): StopResult => ({ ...proc.exitStatus, timedOut, durationMs: performance.now() - started });
  if (!proc.signal(options.signal)) return result(false);
  const exited = proc.exited(options.pollIntervalMs ?? DEFAULT_STOP_POLL_MS);
  if (await settlesWithin(exited, options.timeoutMs)) return result(false);
  proc.signal("SIGKILL");
  if (await settlesWithin(exited, KILL_WAIT_MS)) return result(true);
  throw new ProcessError(
    "ERR_PROCESS_STOP_FAILED",
    `${proc.record.app} ${proc.record.color} (pid ${proc.pid}) is still there ${KILL_WAIT_MS}ms after SIGKILL (stuck in the kernel?); check \`ps -o stat,wchan -p ${proc.pid}\``,
  );
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([promise.then(() => true), sleep(ms, false, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}
