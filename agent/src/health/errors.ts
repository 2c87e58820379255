/** Stable codes for every way a health gate can fail; callers and tests branch on these. */
export const HEALTH_ERROR_CODES = [
  /** The target did not pass enough consecutive checks before the deadline. */
  "ERR_HEALTH_DEADLINE",
  /** The process behind the target died during the gate (`isAlive` said so): failed fast. */
  "ERR_PROCESS_EXITED_EARLY",
  /** The caller aborted the gate (its AbortSignal fired), e.g. the instance is being stopped. */
  "ERR_HEALTH_ABORTED",
] as const;

export type HealthErrorCode = (typeof HEALTH_ERROR_CODES)[number];

export interface HealthErrorDetails {
  /** Why the last failed check failed ("connect ECONNREFUSED ...", "answered 503, expected 200"). */
  lastReason?: string;
  /** Checks run during the gate. */
  checks?: number;
  cause?: unknown;
}

/** The one error type of the health module; `message` names the target and what to look at next. */
export class HealthError extends Error {
  override readonly name = "HealthError";
  readonly code: HealthErrorCode;
  readonly lastReason: string | undefined;
  readonly checks: number;

  constructor(code: HealthErrorCode, message: string, details: HealthErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.code = code;
    this.lastReason = details.lastReason;
    this.checks = details.checks ?? 0;
  }
}

export function isHealthError(error: unknown, code?: HealthErrorCode): error is HealthError {
  return error instanceof HealthError && (code === undefined || error.code === code);
}
