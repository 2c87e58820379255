/** Stable codes for every way starting, adopting or stopping an app process can fail. */
export const PROCESS_ERROR_CODES = [
  /** The OS refused to start the command (not found, not executable, bad cwd, cannot switch user). */
  "ERR_PROCESS_SPAWN_FAILED",
  /** The process exited before it passed its health gate. */
  "ERR_PROCESS_EXITED_EARLY",
  /** The process was still there after SIGKILL (stuck in the kernel): its port may stay busy. */
  "ERR_PROCESS_STOP_FAILED",
  /** `run.user` names no account in /etc/passwd. */
  "ERR_UNKNOWN_USER",
  /** The app would run as uid 0 (no run.user under a root agent, or a uid-0 user) or group 0, and the host does not set allow_root_apps. */
  "ERR_ROOT_APP_REFUSED",
  /** `run.command` or `run.env` uses a `${NAME}` the agent does not provide. */
  "ERR_UNKNOWN_VARIABLE",
  /** The run section cannot be turned into a command (empty argv, `${` without `}`). */
  "ERR_INVALID_RUN_SPEC",
  /** `run.env_file` is missing, not a regular file, world-writable or not KEY=VALUE lines. */
  "ERR_ENV_FILE",
  /** `run.env` references a secret whose value this agent does not hold (not sent, or the agent restarted since). */
  "ERR_SECRET_UNAVAILABLE",
  /** An app name, color or release that is not safe to use in a path. */
  "ERR_INVALID_NAME",
  /** An instance record on disk that does not parse or does not match what it is used for. */
  "ERR_INVALID_RECORD",
  /** A call that the instance's current state does not allow (the message names the state). */
  "ERR_INSTANCE_STATE",
] as const;

export type ProcessErrorCode = (typeof PROCESS_ERROR_CODES)[number];

export interface ProcessErrorDetails {
  /** For ERR_PROCESS_EXITED_EARLY: how the process ended, when known (a child of this agent). */
  exitCode?: number;
  signal?: NodeJS.Signals;
  /** The instance log to read next, when there is one. */
  logPath?: string;
  cause?: unknown;
}

/** The one error type of the process module; `message` says what failed and what to do next. */
export class ProcessError extends Error {
  override readonly name = "ProcessError";
  readonly code: ProcessErrorCode;
  readonly exitCode: number | undefined;
  readonly signal: NodeJS.Signals | undefined;
  readonly logPath: string | undefined;

  constructor(code: ProcessErrorCode, message: string, details: ProcessErrorDetails = {}) {
    super(message, { cause: details.cause });
    this.code = code;
    this.exitCode = details.exitCode;
    this.signal = details.signal;
    this.logPath = details.logPath;
  }
}

export function isProcessError(error: unknown, code?: ProcessErrorCode): error is ProcessError {
  return error instanceof ProcessError && (code === undefined || error.code === code);
}
