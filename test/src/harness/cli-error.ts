/** What `cutover … --json` prints on stderr when it fails (coordinator/src/cli/main.ts). */
export interface CliJsonError {
  /** The coordinator's code when it refused the call (ERR_APP_LOCKED), else the kind of failure (ERR_USAGE, ERR_UNREACHABLE, …). */
  code: string;
  message: string;
}

/**
 * The failure a `--json` run printed: its stderr must be exactly one line, one JSON
 * object `{"error":{"code","message"}}`, as a script reading it expects; throws,
 * showing the whole stderr, when it is anything else.
 */
export function jsonError(result: { stderr: string }): CliJsonError {
  const lines = result.stderr.split("\n");
  if (lines.length !== 2 || lines[1] !== "") throw new Error(`stderr is not one line:\n${result.stderr}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(lines[0]!);
  } catch {
    throw new Error(`stderr is not JSON:\n${result.stderr}`);
  }
  const error = (parsed as { error?: Partial<CliJsonError> } | null)?.error;
  if (Object.keys(parsed ?? {}).length !== 1 || typeof error?.code !== "string" || typeof error.message !== "string" || Object.keys(error).length !== 2) {
    throw new Error(`stderr is not {"error":{"code","message"}}:\n${result.stderr}`);
  }
  return { code: error.code, message: error.message };
}
