import type { ChildProcess } from "node:child_process";
import { ProcessError } from "./errors.js";
import { isZombie, readCmdline, readProcStat } from "./proc.js";
import type { InstanceRecord } from "./record.js";

/** How a process ended; both unknown when it was not this agent's child (adopted after a restart). */
export interface ExitStatus {
  exitCode?: number;
  signal?: NodeJS.Signals;
}

/** Interval at which /proc is polled to notice an adopted process's exit (no event exists for it). */
export const DEFAULT_EXIT_POLL_MS = 1000;

export type Identification = { alive: true } | { alive: false; reason: string };

/**
 * Is the process in `record` still running? Only if /proc/<pid> exists, is not
 * a zombie, and has the recorded start time and argv: a reused pid fails.
 */
export function identify(record: Pick<InstanceRecord, "pid" | "startTime" | "cmdline">): Identification {
  const { pid } = record;
  const stat = readProcStat(pid);
  if (!stat) return { alive: false, reason: `pid ${pid} is gone` };
  if (isZombie(stat)) return { alive: false, reason: `pid ${pid} has exited (zombie, not reaped yet)` };
  if (stat.startTime !== record.startTime) {
    return { alive: false, reason: `pid ${pid} started at tick ${stat.startTime}, not ${record.startTime} as recorded: the pid was reused` };
  }
  const cmdline = readCmdline(pid);
  if (!cmdline) return { alive: false, reason: `pid ${pid} is gone` };
  if (cmdline.length !== record.cmdline.length || cmdline.some((arg, i) => arg !== record.cmdline[i])) {
    return { alive: false, reason: `pid ${pid} runs ${JSON.stringify(cmdline)}, not ${JSON.stringify(record.cmdline)} as recorded` };
  }
  return { alive: true };
}

/**
 * One app process, either spawned by this agent (a child: its exit is an
 * event) or adopted from a record after an agent restart (exit noticed by
 * polling /proc). Signals go to its process group, which it leads.
 */
export class AppProcess {
  readonly record: InstanceRecord;
  readonly #child: ChildProcess | undefined;
  #status: ExitStatus | undefined;
  readonly #exited: Promise<ExitStatus>;
  #resolveExited!: (status: ExitStatus) => void;
  #poll: { timer: NodeJS.Timeout; intervalMs: number } | undefined;

  constructor(record: InstanceRecord, child?: ChildProcess) {
    this.record = record;
    this.#child = child;
    this.#exited = new Promise((resolve) => (this.#resolveExited = resolve));
    if (child) {
      child.on("error", () => {});
      if (child.exitCode !== null || child.signalCode !== null) this.#markExited(child.exitCode, child.signalCode);
      else child.once("exit", (code, signal) => this.#markExited(code, signal));
    }
  }

  get pid(): number {
    return this.record.pid;
  }

  /** True when this agent spawned the process (exit code and signal will be known). */
  get isChild(): boolean {
    return this.#child !== undefined;
  }

  /** How it ended; undefined while it runs. */
  get exitStatus(): ExitStatus | undefined {
    return this.#status;
  }

  isAlive(): boolean {
    if (this.#status) return false;
    if (this.#child) return true;
    const id = identify(this.record);
    if (!id.alive) this.#markExited(null, null);
    return id.alive;
  }

  /**
   * Resolves when the process exits. While someone waits, the agent's event
   * loop is kept alive (a child is ref'ed; an adopted process is polled every
   * `pollIntervalMs`, a shorter interval from a later call wins).
   */
  exited(pollIntervalMs = DEFAULT_EXIT_POLL_MS): Promise<ExitStatus> {
    if (!this.#status) {
      if (this.#child) this.#child.ref();
      else if (!this.#poll || this.#poll.intervalMs > pollIntervalMs) this.#watch(pollIntervalMs);
    }
    return this.#exited;
  }

  /** Sends `signal` to the process group; false when the process is already gone. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.isAlive()) return false;
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
      throw new ProcessError("ERR_PROCESS_STOP_FAILED", `cannot send ${signal} to process group ${this.pid} (${this.record.app} ${this.record.color}): ${(error as Error).message}`, { cause: error });
    }
  }

  /** Stops watching; the process keeps running and no longer keeps the agent alive. */
  release(): void {
    this.#child?.unref();
    if (this.#poll) clearInterval(this.#poll.timer);
    this.#poll = undefined;
  }

  #watch(intervalMs: number): void {
    if (this.#poll) clearInterval(this.#poll.timer);
    this.#poll = { timer: setInterval(() => this.isAlive(), intervalMs), intervalMs };
  }

  #markExited(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#status) return;
    const status: ExitStatus = {};
    if (code !== null) status.exitCode = code;
    if (signal !== null) status.signal = signal;
    this.#status = status;
    if (this.#poll) clearInterval(this.#poll.timer);
    this.#poll = undefined;
    this.#resolveExited(status);
  }
}

export type AdoptResult = { alive: true; process: AppProcess } | { alive: false; reason: string };

/** Finds the process of a saved record again; `alive: false` (with why) when the record is stale. */
export function adoptProcess(record: InstanceRecord): AdoptResult {
  const id = identify(record);
  return id.alive ? { alive: true, process: new AppProcess(record) } : id;
}
