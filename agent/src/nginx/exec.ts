import { execa } from "execa";
import type { Command } from "./commands.js";

/** One result shape for success and failure (execa's, narrowed to what callers read). */
export interface CommandResult {
  command: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The spawn failed (ENOENT, EACCES): exitCode is null and this says why. */
  spawnError?: Error;
  durationMs: number;
}

export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

/**
 * Runs a command to completion through execa (no shell; argv as built by
 * commands.ts); never throws, the caller decides what a non-zero exit means.
 */
export async function runCommand(command: Command, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResult> {
  const result = await execa(command.file, command.args, {
    cwd: command.cwd,
    reject: false,
    stdin: "ignore",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    stripFinalNewline: false,
  });
  // execa reports a spawn failure (ENOENT, EACCES) as a failed result with no exit code.
  const spawnFailed = result.failed && result.exitCode === undefined && result.signal === undefined && !result.timedOut;
  return {
    command: result.escapedCommand,
    exitCode: result.exitCode ?? null,
    signal: (result.signal as NodeJS.Signals | undefined) ?? null,
    stdout: result.stdout,
    stderr: result.stderr,
    timedOut: result.timedOut,
    ...(spawnFailed ? { spawnError: new Error(result.originalMessage || result.shortMessage) } : {}),
    durationMs: result.durationMs,
  };
}

/** stderr, stdout and the spawn error joined: what to show when a command failed. */
export function commandOutput(result: CommandResult): string {
  return [result.stderr.trim(), result.stdout.trim(), result.spawnError?.message ?? "", result.timedOut ? "(timed out)" : ""]
    .filter((part) => part !== "")
    .join("\n");
}
