/** Stable codes for every way applying, reading or removing resource limits can fail. */
export const LIMITS_ERROR_CODES = [
  /** The host cannot enforce a requested limit (no cgroup controller, no permission); the message starts "limits unsupported here:". */
  "ERR_LIMITS_UNSUPPORTED",
  /** A limit value the kernel would refuse (not a positive number, below the smallest CPU quota) or an unsafe app name. */
  "ERR_LIMITS_INVALID",
  /** A cgroup could not be created, written or joined; the message names the file and the errno. */
  "ERR_LIMITS_APPLY_FAILED",
  /** The instance was killed by the kernel because it went over its memory limit. */
  "ERR_LIMITS_MEMORY_EXCEEDED",
] as const;

export type LimitsErrorCode = (typeof LIMITS_ERROR_CODES)[number];

/** The one error type of the limits module; `message` says what failed and what to do next. */
export class LimitsError extends Error {
  override readonly name = "LimitsError";
  readonly code: LimitsErrorCode;

  constructor(code: LimitsErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
  }
}

export function isLimitsError(error: unknown, code?: LimitsErrorCode): error is LimitsError {
  return error instanceof LimitsError && (code === undefined || error.code === code);
}
