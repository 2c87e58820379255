import type { Logger } from "./logger.js";

/** How often the loop is sampled, and how late a tick must be to be reported. */
export const LOOP_SAMPLE_MS = 500;
export const LOOP_STALL_REPORT_MS = 1_000;

/**
 * Logs when the process's event loop was held up (a synchronous call, a long GC,
 * the process starved of CPU): the cause a late heartbeat or a slow answer points at.
 * Returns a function that stops watching.
 */
export function watchEventLoop(log: Logger, reportAboveMs = LOOP_STALL_REPORT_MS): () => void {
  let expected = performance.now() + LOOP_SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    const lateMs = now - expected;
    expected = now + LOOP_SAMPLE_MS;
    if (lateMs > reportAboveMs) log.warn("event loop stalled", { ms: Math.round(lateMs) });
  }, LOOP_SAMPLE_MS);
  timer.unref();
  return () => clearInterval(timer);
}
