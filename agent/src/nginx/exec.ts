import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
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

/** An argument as a shell would need it written: bare when safe, else single-quoted. */
function shellQuote(arg: string): string {
  return /^[\w./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** How a command reads in an error message: `file arg …`, quoted where needed. */
export function shownCommand(command: Command): string {
  return [command.file, ...command.args].map(shellQuote).join(" ");
}

/**
 * Runs a command to completion (no shell; argv as built by commands.ts) and resolves once
 * it exited and its output closed; never rejects, the caller decides what a non-zero exit
 * means. Node's own spawn, not execa: `nginx -t` sits inside every reload switch, and
 * execa's setup cost several milliseconds of it (and megabytes of the idle agent).
 */
export function runCommand(command: Command, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command.file, command.args, { cwd: command.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const stdout: string[] = [];
    const stderr: string[] = [];
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => stdout.push(chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    let settled = false;
    const settle = (exitCode: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        command: shownCommand(command),
        exitCode,
        signal,
        stdout: stdout.join(""),
        stderr: stderr.join(""),
        timedOut,
        ...(spawnError !== undefined ? { spawnError } : {}),
        durationMs: performance.now() - started,
      });
    };
    // A spawn failure (ENOENT, EACCES) has no pid and no exit; any other error is followed by close.
    child.once("error", (error) => {
      if (child.pid === undefined) settle(null, null, error);
    });
    child.once("close", (code, signal) => settle(code, signal));
  });
}

/** stderr, stdout and the spawn error joined: what to show when a command failed. */
export function commandOutput(result: CommandResult): string {
  return [result.stderr.trim(), result.stdout.trim(), result.spawnError?.message ?? "", result.timedOut ? "(timed out)" : ""]
    .filter((part) => part !== "")
    .join("\n");
}
