export { checkOnce, type CheckResult, type HealthCheck, type HealthTarget } from "./check.js";
export { waitHealthy, type HealthyResult, type WaitHealthyOptions } from "./wait.js";
export { HEALTH_ERROR_CODES, HealthError, isHealthError, type HealthErrorCode, type HealthErrorDetails } from "./errors.js";
