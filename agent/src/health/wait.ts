import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { checkOnce, type HealthCheck, type HealthTarget } from "./check.js";
import { HealthError } from "./errors.js";

export interface WaitHealthyOptions extends HealthTarget {
  check: HealthCheck;
  /** Time from the start of one check to the start of the next, ms. */
  intervalMs: number;
  /** Time one check may take, ms. */
  timeoutMs: number;
  /** Consecutive passes needed; a failure resets the count. */
  healthyThreshold: number;
  /** Time the target has to become healthy, ms, from the call. */
  deadlineMs: number;
  /** Aborts the gate (rejects with ERR_HEALTH_ABORTED), e.g. when the instance is being stopped. */
  signal?: AbortSignal;
  /** Asked before and after every check; false fails the gate at once with ERR_PROCESS_EXITED_EARLY. */
  isAlive?: () => boolean;
  /** Monotonic clock, ms; injectable for tests. */
  now?: () => number;
}

export interface HealthyResult {
  /** Checks run, passed or not. */
  checks: number;
  durationMs: number;
}

/**
 * The health gate: resolves once `healthyThreshold` consecutive checks pass.
 * Rejects with ERR_HEALTH_DEADLINE (carrying the last failure's reason), or
 * ERR_PROCESS_EXITED_EARLY as soon as `isAlive` says the process is gone,
 * without waiting for the deadline.
 */
export async function waitHealthy(options: WaitHealthyOptions): Promise<HealthyResult> {
  const { check, intervalMs, timeoutMs, healthyThreshold, deadlineMs, signal, isAlive } = options;
  const now = options.now ?? (() => performance.now());
  const started = now();
  const deadline = started + deadlineMs;
  const target = `${options.address}:${options.port}`;
  let checks = 0;
  let passes = 0;
  let lastReason = "no check finished before the deadline";

  const aborted = () =>
    new HealthError("ERR_HEALTH_ABORTED", `health gate of ${target} aborted after ${checks} checks`, { lastReason, checks, cause: signal?.reason });
  const exited = () =>
    new HealthError(
      "ERR_PROCESS_EXITED_EARLY",
      `the process behind ${target} exited before it passed its health gate (after ${checks} checks; last failure: ${lastReason}); read the instance log for why`,
      { lastReason, checks },
    );

  for (;;) {
    if (signal?.aborted) throw aborted();
    if (isAlive && !isAlive()) throw exited();
    const remaining = deadline - now();
    if (remaining <= 0) {
      throw new HealthError(
        "ERR_HEALTH_DEADLINE",
        `${target} did not pass ${healthyThreshold} consecutive health checks within ${deadlineMs}ms (${checks} checks, ${passes} passing at the end); last failure: ${lastReason}`,
        { lastReason, checks },
      );
    }
    const checkStarted = now();
    const bound = Math.min(timeoutMs, remaining);
    const result = await checkOnce(options, check, bound);
    checks++;
    // A pass from a dead process means someone else answers on its port.
    if (isAlive && !isAlive()) throw exited();
    if (result.ok) {
      passes++;
      if (passes >= healthyThreshold) return { checks, durationMs: now() - started };
    } else {
      passes = 0;
      // A check cut short by the deadline says nothing about the app; keep the real failure.
      if (!(result.timedOut && bound < timeoutMs && checks > 1)) lastReason = result.reason;
    }
    const wait = Math.min(intervalMs - (now() - checkStarted), deadline - now());
    if (wait > 0) {
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        throw aborted();
      }
    }
  }
}
