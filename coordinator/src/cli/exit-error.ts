/** Thrown by CLI commands; only the entry point turns it into output and an exit code. */
export class ExitError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
