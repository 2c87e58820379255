export { detectCgroups, DEFAULT_CGROUP_ROOT, type CgroupSupport } from "./detect.js";
export { applyLimits, attachProcess, existingLimits, removeLimits, REMOVE_WAIT_MS, type ApplyLimitsRequest, type RemoveLimitsResult } from "./apply.js";
export { cgroupName, limitsPlan, CGROUP_PARENT, type CgroupStep, type LimitRequest, type LimitsPlan } from "./plan.js";
export { describeExit, wasOomKilled, readOomCounter, oomCounterFrom, parseKeyedCounters, type OomCounter, type OomCounterSource } from "./oom.js";
export { wrapInCgroup, shellQuote, DEFAULT_SHELL, DEFAULT_SETPRIV, WRAPPER_FAILED_EXIT_CODE, type WrapOptions, type WrappedSpec } from "./wrap.js";
export { cpuMaxValue, cpuQuotaUs, formatBytes, memoryLimitValue, CPU_PERIOD_US, MIN_CPU_QUOTA_US } from "./values.js";
export type { LimitHandle } from "./handle.js";
export { LIMITS_ERROR_CODES, LimitsError, isLimitsError, type LimitsErrorCode } from "./errors.js";
