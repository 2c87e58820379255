import { LimitsError } from "./errors.js";

// The numbers written into cgroup files, computed once here so both cgroup
// versions agree on them and tests can compare exact strings.

/** CFS period, µs: the kernel default; the quota is cores × this. */
export const CPU_PERIOD_US = 100_000;
/** The smallest CFS quota the kernel accepts, µs (0.01 cores at the default period). */
export const MIN_CPU_QUOTA_US = 1000;
/** Largest memory limit written as a number; anything above is "no limit" to the kernel anyway. */
const MAX_MEMORY_BYTES = Number.MAX_SAFE_INTEGER;

/** Checks a memory limit and returns it as the decimal string both cgroup versions take. */
export function memoryLimitValue(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > MAX_MEMORY_BYTES) {
    throw new LimitsError("ERR_LIMITS_INVALID", `memory limit ${bytes} is not a whole number of bytes above 0; use a size like 512M`);
  }
  return String(bytes);
}

/** CFS quota for `cores` CPUs per CPU_PERIOD_US, µs; refuses what the kernel would. */
export function cpuQuotaUs(cores: number): number {
  if (!Number.isFinite(cores) || cores <= 0) {
    throw new LimitsError("ERR_LIMITS_INVALID", `cpu limit ${cores} is not a number of cores above 0; use e.g. 0.5 or 2`);
  }
  const quota = Math.round(cores * CPU_PERIOD_US);
  if (quota < MIN_CPU_QUOTA_US) {
    throw new LimitsError("ERR_LIMITS_INVALID", `cpu limit ${cores} cores is below the smallest the kernel enforces, ${MIN_CPU_QUOTA_US / CPU_PERIOD_US} cores`);
  }
  return quota;
}

/** cgroup v2 `cpu.max`: "<quota> <period>", or "max <period>" for no limit. */
export function cpuMaxValue(cores: number | undefined): string {
  return `${cores === undefined ? "max" : cpuQuotaUs(cores)} ${CPU_PERIOD_US}`;
}

/** "64 MiB", "1.5 GiB": for messages (the one formatter all of cutover uses). */
export { formatBytes } from "@cutover/log";
