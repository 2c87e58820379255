import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const CUTOVER_BIN = join(repoRoot, "coordinator", "bin", "cutover.js");
export const AGENT_BIN = join(repoRoot, "agent", "bin", "cutover-agent.js");
/** How long a harness wait may take before the test fails with the process output. */
export const WAIT_MS = 20_000;

/**
 * A temp dir removed when the test ends. 0711, as /var/lib is on a host: apps running
 * as their run.user and nginx's unprivileged workers pass through it to the agent's
 * state dir inside, and nobody else can list it.
 */
export function tempDir(t: { teardown(fn: () => void): void }, prefix = "cutover-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o711);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A child process whose output lines are kept and can be awaited: tests wait
 * for the line that says a thing happened instead of sleeping.
 */
export class WatchedProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private watchers: { pattern: RegExp; from: number; resolve(line: string): void }[] = [];

  constructor(readonly child: ChildProcess, readonly label: string) {
    const onLine = (line: string) => {
      const index = this.lines.push(line) - 1;
      if (process.env.CUTOVER_TEST_VERBOSE) process.stderr.write(`[${label}] ${line}\n`);
      this.watchers = this.watchers.filter((w) => {
        if (index >= w.from && w.pattern.test(line)) {
          w.resolve(line);
          return false;
        }
        return true;
      });
    };
    if (child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
    if (child.stderr) createInterface({ input: child.stderr }).on("line", onLine);
    this.exited = once(child, "exit").then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Marks the current end of the output: `waitForLine(p, mark)` only matches lines after it. */
  mark(): number {
    return this.lines.length;
  }

  /** Resolves with the first line (after `from`) matching `pattern`; rejects with the output on timeout or exit. */
  waitForLine(pattern: RegExp, from = 0, timeoutMs = WAIT_MS): Promise<string> {
    const seen = this.lines.slice(from).find((l) => pattern.test(l));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      const fail = (why: string) => {
        this.watchers = this.watchers.filter((w) => w.resolve !== done);
        reject(new Error(`${this.label}: ${why} waiting for ${pattern}; output:\n${this.lines.slice(-40).join("\n")}`));
      };
      const done = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.watchers.push({ pattern, from, resolve: done });
      void this.exited.then(({ code, signal }) => {
        if (this.watchers.some((w) => w.resolve === done)) {
          clearTimeout(timer);
          fail(`exited (code ${code}, signal ${signal})`);
        }
      });
    });
  }

  async kill(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill(signal);
    await this.exited;
  }
}

/** Runs `node <file> <args>`; with `niceness`, through coreutils' nice (it execs node: same pid), as a systemd unit's Nice= would. */
export function spawnWatched(label: string, file: string, args: string[], env: NodeJS.ProcessEnv = {}, niceness?: number): WatchedProcess {
  const argv = [process.execPath, file, ...args];
  const [command, ...rest] = niceness === undefined ? argv : ["nice", "-n", String(niceness), ...argv];
  const child = spawn(command as string, rest, {
    env: { ...process.env, CUTOVER_LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new WatchedProcess(child, label);
}

export interface CliResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `cutover` CLI as an operator would: the checkout's, or `bin` (the one-file CLI) from `cwd`. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, { bin = CUTOVER_BIN, cwd }: { bin?: string; cwd?: string } = {}): Promise<CliResult> {
  return outputOf(spawn(process.execPath, [bin, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] }));
}

/** Everything a child (spawned with piped stdout and stderr) printed, and its exit code, once it has ended. */
export async function outputOf(child: ChildProcess): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout += d));
  child.stderr?.on("data", (d: Buffer) => (stderr += d));
  const [exitCode] = (await once(child, "close")) as [number | null];
  return { exitCode, stdout, stderr };
}

export function readAdminToken(dataDir: string): string {
  return readFileSync(join(dataDir, "admin-token"), "utf8").trim();
}
