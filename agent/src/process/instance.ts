import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { backoffDelayMs, createLogger, type Logger } from "@cutover/log";
import { isHealthError, waitHealthy, type HealthCheck } from "../health/index.js";
import { adoptProcess, DEFAULT_EXIT_POLL_MS, type AppProcess, type ExitStatus } from "./app-process.js";
import { ProcessError } from "./errors.js";
import type { LogRotation } from "./log-file.js";
import { removeInstanceRecord, type InstanceIdentity, type InstanceRecord } from "./record.js";
import type { ProcessSpec } from "./spec.js";
import { startProcess } from "./start.js";
import { stopProcess, type StopOptions, type StopResult } from "./stop.js";

export type InstanceState = "starting" | "healthy" | "unhealthy" | "draining" | "stopping" | "stopped" | "crashed";

/** The health gate an instance passes after every (re)start and adoption. */
export interface HealthGate {
  check: HealthCheck;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  deadlineMs: number;
}

/** Restarts after a crash wait backoffDelayMs(attempt, baseMs, capMs): doubling, capped, jittered. */
export interface RestartPolicy {
  baseMs: number;
  capMs: number;
  /** A crash after running this long starts the backoff over from baseMs. */
  resetAfterMs: number;
  /** Jitter source in [0, 1); a test passes () => 1 for exact delays. */
  random: () => number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseMs: 1000, capMs: 30_000, resetAfterMs: 60_000, random: Math.random };

export interface AppInstanceOptions {
  identity: InstanceIdentity;
  spec: ProcessSpec;
  stateDir: string;
  logDir: string;
  health: HealthGate;
  stop: Omit<StopOptions, "pollIntervalMs">;
  restart?: Partial<RestartPolicy>;
  /** /proc poll interval for noticing the exit of an adopted process, ms. */
  exitPollIntervalMs?: number;
  logRotation?: LogRotation;
  log?: Logger;
  /** Monotonic clock, ms (backoff reset). */
  now?: () => number;
}

export interface InstanceEvents {
  transition: [{ from: InstanceState; to: InstanceState; reason: string }];
  /** The process ended; `requested` is false for a crash. */
  exit: [{ pid: number; requested: boolean } & ExitStatus];
  /** A crashed instance will be started again after `delayMs`. */
  restart: [{ attempt: number; delayMs: number }];
}

/*
 * The life of one instance (one app, one color). Every change goes through
 * transition(), which refuses any edge not drawn here:
 *
 *            start(), adopt()           gate passes
 *  stopped ──────────────────▶ starting ────────────▶ healthy ──────┐ drain()
 *     ▲                         │  │                    │           ▼
 *     │                         │  └─ gate deadline ─▶ unhealthy ─▶ draining
 *     │        exited early, or │                       │           │
 *     │        spawn failed     ▼      exited unasked   ▼           ▼
 *     ├──────── stop() ─────── crashed ◀────────────────┴───────────┘
 *     │                         │
 *     │                         └─ restart after backoff ─▶ starting
 *     │                            (if it was healthy once or adopted, and not drained)
 *     └── stopping ◀── stop() ── starting, healthy, unhealthy, draining
 */
const TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  stopped: ["starting"],
  starting: ["healthy", "unhealthy", "crashed", "stopping"],
  healthy: ["draining", "stopping", "crashed"],
  unhealthy: ["draining", "stopping", "crashed"],
  draining: ["stopping", "crashed"],
  stopping: ["stopped"],
  crashed: ["starting", "stopped"],
};

/**
 * Supervises one app instance: starts it and gates it on health, adopts it
 * after an agent restart, restarts it with backoff when it crashes while in
 * service, drains and stops it. The process itself never depends on the
 * agent staying up.
 */
export class AppInstance extends EventEmitter<InstanceEvents> {
  readonly identity: InstanceIdentity;
  readonly #options: AppInstanceOptions;
  readonly #restart: RestartPolicy;
  readonly #log: Logger;
  readonly #now: () => number;
  #state: InstanceState = "stopped";
  #proc: AppProcess | undefined;
  #spawning: Promise<AppProcess> | undefined;
  #gate: AbortController | undefined;
  #stopping: Promise<StopResult> | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Crashes restart only for an instance that was in service (healthy once, or adopted). */
  #supervised = false;
  /** Consecutive restarts, for the backoff. */
  #restarts = 0;
  #startedAt = 0;
  #detached = false;

  constructor(options: AppInstanceOptions) {
    super();
    this.identity = options.identity;
    this.#options = options;
    this.#restart = { ...DEFAULT_RESTART_POLICY, ...options.restart };
    this.#log = options.log ?? createLogger("instance");
    this.#now = options.now ?? (() => performance.now());
  }

  get state(): InstanceState {
    return this.#state;
  }

  /** The current process, if one was started or adopted. */
  get process(): AppProcess | undefined {
    return this.#proc;
  }

  /**
   * Starts the instance and resolves once it passes its health gate. Rejects
   * with ERR_PROCESS_SPAWN_FAILED or ERR_PROCESS_EXITED_EARLY (state crashed),
   * ERR_HEALTH_DEADLINE (state unhealthy: the process still runs, stop it), or
   * ERR_INSTANCE_STATE when stop() came first.
   */
  async start(): Promise<void> {
    this.#expect("start", ["stopped"]);
    this.#supervised = false;
    this.#restarts = 0;
    await this.#launch("start requested");
  }

  /**
   * Takes over the process of a saved record after an agent restart, then
   * runs the health gate (state healthy or unhealthy after it). False, and the
   * record deleted, when the record is stale (process gone, or pid reused).
   */
  async adopt(record: InstanceRecord): Promise<boolean> {
    this.#expect("adopt", ["stopped"]);
    const { app, color, release, port, address } = this.identity;
    if (record.app !== app || record.color !== color || record.release !== release || record.port !== port || record.address !== address) {
      throw new ProcessError(
        "ERR_INVALID_RECORD",
        `record of ${record.app} ${record.color} ${record.release} on ${record.address}:${record.port} does not describe ${app} ${color} ${release} on ${address}:${port}`,
      );
    }
    const adopted = adoptProcess(record);
    if (!adopted.alive) {
      this.#log.info("stale instance record, not adopted", { app, color, pid: record.pid, reason: adopted.reason });
      removeInstanceRecord(this.#options.stateDir, record);
      return false;
    }
    this.#supervised = true;
    this.#restarts = 0;
    const gate = new AbortController();
    this.#gate = gate;
    // Attached before the transition, so that a stop() from a transition listener finds it.
    this.#attach(adopted.process);
    this.#transition("starting", `adopting pid ${record.pid}`);
    try {
      await this.#passGate(adopted.process, gate.signal);
    } catch {
      // The state says how the gate went (unhealthy, crashed, stopping).
    }
    return true;
  }

  /** Marks the instance as out of service (traffic switched away); a crash from here on is not restarted. */
  drain(): void {
    this.#expect("drain", ["healthy", "unhealthy"]);
    this.#supervised = false;
    this.#transition("draining", "traffic switched away");
  }

  /**
   * Stops the instance: stop signal to its process group, SIGKILL after the
   * timeout; deletes its record. Idempotent; cancels a pending restart or
   * health gate.
   */
  stop(): Promise<StopResult> {
    if (this.#stopping) return this.#stopping;
    switch (this.#state) {
      case "stopped":
        return Promise.resolve({ timedOut: false, durationMs: 0 });
      case "crashed": {
        clearTimeout(this.#restartTimer);
        this.#restartTimer = undefined;
        this.#transition("stopped", "stop requested while crashed");
        return Promise.resolve({ ...this.#proc?.exitStatus, timedOut: false, durationMs: 0 });
      }
      case "stopping":
        // A previous attempt failed (ERR_PROCESS_STOP_FAILED): try again.
        break;
      default:
        this.#transition("stopping", "stop requested");
    }
    this.#supervised = false;
    this.#gate?.abort();
    this.#stopping = this.#stopNow().finally(() => (this.#stopping = undefined));
    return this.#stopping;
  }

  /**
   * Forgets the instance without stopping it (the agent is shutting down or
   * upgrading): no more exit watching, restarts or health checks. The record
   * stays, so the next agent adopts the process.
   */
  detach(): void {
    this.#detached = true;
    clearTimeout(this.#restartTimer);
    this.#gate?.abort();
    this.#proc?.release();
  }

  async #launch(reason: string): Promise<void> {
    const gate = new AbortController();
    this.#gate = gate;
    // The previous process (if any) is dead; stop() must wait for the new one, not stop the old.
    this.#proc = undefined;
    this.#spawning = undefined;
    this.#transition("starting", reason);
    // stop() from a transition listener: do not spawn at all.
    if (gate.signal.aborted) throw this.#stoppedWhileStarting();
    const { spec, identity, stateDir, logDir, logRotation } = this.#options;
    this.#spawning = startProcess(spec, identity, { stateDir, logDir, logRotation }).then((proc) => this.#attach(proc));
    let proc: AppProcess;
    try {
      proc = await this.#spawning;
    } catch (error) {
      if (this.#state === "starting") this.#crashed(`spawn failed: ${(error as Error).message}`);
      throw error;
    }
    if (gate.signal.aborted) throw this.#stoppedWhileStarting();
    await this.#passGate(proc, gate.signal);
  }

  #attach(proc: AppProcess): AppProcess {
    this.#proc = proc;
    this.#startedAt = this.#now();
    void proc.exited(this.#options.exitPollIntervalMs ?? DEFAULT_EXIT_POLL_MS).then((status) => this.#onExit(proc, status));
    return proc;
  }

  async #passGate(proc: AppProcess, signal: AbortSignal): Promise<void> {
    const { address, port } = this.identity;
    try {
      await waitHealthy({ address, port, ...this.#options.health, signal, isAlive: () => proc.isAlive() });
    } catch (error) {
      if (this.#state !== "starting" || this.#proc !== proc || isHealthError(error, "ERR_HEALTH_ABORTED")) throw this.#stoppedWhileStarting();
      if (isHealthError(error, "ERR_PROCESS_EXITED_EARLY")) {
        const status = await proc.exited();
        const { app, color, release } = this.identity;
        const exited = ["exited", describeExit(status), "before it passed its health gate"].filter(Boolean).join(" ");
        this.#crashed(exited);
        throw new ProcessError("ERR_PROCESS_EXITED_EARLY", `${app} ${color} (release ${release}, pid ${proc.pid}) ${exited}; read its log: ${proc.record.logPath}`, {
          ...status,
          logPath: proc.record.logPath,
          cause: error,
        });
      }
      this.#transition("unhealthy", (error as Error).message);
      throw error;
    }
    if (this.#state !== "starting") throw this.#stoppedWhileStarting();
    this.#supervised = true;
    this.#transition("healthy", "passed its health gate");
  }

  #onExit(proc: AppProcess, status: ExitStatus): void {
    if (proc !== this.#proc || this.#detached) return;
    const requested = this.#state === "stopping";
    this.emit("exit", { pid: proc.pid, requested, ...status });
    this.#forget(proc);
    // While starting, the health gate notices (isAlive) and reports it; while stopping, stop() does.
    if (this.#state === "healthy" || this.#state === "unhealthy" || this.#state === "draining") {
      this.#crashed(["pid", proc.pid, "exited unexpectedly", describeExit(status)].filter(Boolean).join(" "));
    }
  }

  #crashed(reason: string): void {
    this.#transition("crashed", reason);
    if (!this.#supervised || this.#detached) return;
    if (this.#now() - this.#startedAt >= this.#restart.resetAfterMs) this.#restarts = 0;
    const attempt = ++this.#restarts;
    const delayMs = backoffDelayMs(attempt - 1, this.#restart.baseMs, this.#restart.capMs, this.#restart.random);
    this.#log.warn("restarting crashed instance", { app: this.identity.app, color: this.identity.color, attempt, delayMs });
    this.emit("restart", { attempt, delayMs });
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#launch(`restart ${attempt} after a crash`).catch((error: Error) => {
        this.#log.warn("restart failed", { app: this.identity.app, color: this.identity.color, attempt, error: error.message, state: this.#state });
      });
    }, delayMs);
  }

  async #stopNow(): Promise<StopResult> {
    const proc = this.#proc ?? (await this.#spawning?.catch(() => undefined));
    const result = proc ? await stopProcess(proc, this.#options.stop) : { timedOut: false, durationMs: 0 };
    if (proc) this.#forget(proc);
    this.#transition("stopped", result.timedOut ? `killed after ${this.#options.stop.timeoutMs}ms` : "stopped");
    return result;
  }

  /** The process is gone: drop its record and stop watching it. */
  #forget(proc: AppProcess): void {
    proc.release();
    try {
      removeInstanceRecord(this.#options.stateDir, proc.record);
    } catch (error) {
      this.#log.warn("cannot delete instance record", { app: this.identity.app, color: this.identity.color, error: (error as Error).message });
    }
  }

  #stoppedWhileStarting(): ProcessError {
    return new ProcessError("ERR_INSTANCE_STATE", `${this.identity.app} ${this.identity.color} was stopped (or detached) while starting`);
  }

  #expect(call: string, states: readonly InstanceState[]): void {
    if (states.includes(this.#state)) return;
    const next = states.includes("stopped") ? "; stop it first" : "";
    throw new ProcessError("ERR_INSTANCE_STATE", `cannot ${call} ${this.identity.app} ${this.identity.color} while it is ${this.#state}${next}`);
  }

  #transition(to: InstanceState, reason: string): void {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(to)) {
      throw new ProcessError("ERR_INSTANCE_STATE", `${this.identity.app} ${this.identity.color}: no transition from ${from} to ${to} (${reason})`);
    }
    this.#state = to;
    this.#log.info(`instance ${from} -> ${to}`, { app: this.identity.app, color: this.identity.color, pid: this.#proc?.pid, from, to, reason });
    this.emit("transition", { from, to, reason });
  }
}

/** "with code 1", "on SIGKILL", or "" when unknown (an adopted process). */
function describeExit(status: ExitStatus): string {
  if (status.exitCode !== undefined) return `with code ${status.exitCode}`;
  return status.signal ? `on ${status.signal}` : "";
}
