/** Thrown by CLI commands; only the entry point turns it into output and an exit code. */
export class ExitError extends Error {
  /** `apiCode`: the coordinator's error code when it refused the call (e.g. ERR_APP_LOCKED), for a command that handles one. */
  constructor(message: string, readonly exitCode = 1, readonly apiCode?: string) {
    super(message);
  }
}
