/**
 * Process-level failure capture for the live fuzz targets: the product code
 * runs inside the test process, so a crash of "the coordinator" or "the agent"
 * shows up here as an uncaught exception or an unhandled rejection.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

export interface ProcessGuard {
  /** Everything caught so far, as "kind: message" lines. */
  readonly problems: string[];
  /** Process warnings (e.g. TimeoutOverflowWarning: a timer given more than 2^31-1 ms fires after 1 ms). */
  readonly warnings: string[];
  dispose(): void;
}

/** Listens for uncaught exceptions, unhandled rejections and warnings until disposed. */
export function guardProcess(): ProcessGuard {
  const problems: string[] = [];
  const warnings: string[] = [];
  const onException = (error: Error) => problems.push(`uncaughtException: ${error?.stack ?? String(error)}`);
  const onRejection = (reason: unknown) => problems.push(`unhandledRejection: ${(reason as Error)?.stack ?? String(reason)}`);
  const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);
  process.on("warning", onWarning);
  return {
    problems,
    warnings,
    dispose() {
      process.off("uncaughtException", onException);
      process.off("unhandledRejection", onRejection);
      process.off("warning", onWarning);
    },
  };
}

/** gc() without --expose-gc on the command line: the flag can be set at runtime and gc fetched from a fresh context. */
export function exposeGc(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (existing) return existing;
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return undefined;
  }
}

/** heapUsed after a full collection (twice: the first pass can leave finalizable objects behind). */
export function settledHeap(gc: (() => void) | undefined): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

export const MiB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`;
