import { spawn } from "node:child_process";
import { performance } from "node:perf_hooks";
import type { Command } from "./commands.js";

/** One result shape for success and failure, like execa's. */
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

/** Runs a command to completion; never throws, the caller decides what a non-zero exit means. */
export function runCommand(command: Command, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<CommandResult> {
  const started = performance.now();
  const printable = [command.file, ...command.args].join(" ");
  return new Promise((resolve) => {
    const child = spawn(command.file, command.args, { cwd: command.cwd, stdio: ["ignore", "pipe", "pipe"] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    let spawnError: Error | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => {
      spawnError = error;
    });
    child.on("close", (exitCode, signal) => {
      clearTimeout(timer);
      resolve({
        command: printable,
        exitCode,
        signal,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
        timedOut,
        ...(spawnError ? { spawnError } : {}),
        durationMs: performance.now() - started,
      });
    });
  });
}

/** stderr, stdout and the spawn error joined: what to show when a command failed. */
export function commandOutput(result: CommandResult): string {
  return [result.stderr.trim(), result.stdout.trim(), result.spawnError?.message ?? "", result.timedOut ? "(timed out)" : ""]
    .filter((part) => part !== "")
    .join("\n");
}
