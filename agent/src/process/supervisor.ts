import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { backoffDelayMs, createLogger, type Logger } from "@cutover/log";
import { ProcessError } from "./errors.js";
import type { Color } from "./record.js";
import type { StopResult } from "./stop.js";

/**
 * The life of one app color on this host, as reported on the wire
 * (AppInstance.state in proto/cutover/v1/resources.proto).
 */
export type SupervisorState = "stopped" | "starting" | "healthy" | "unhealthy" | "draining" | "stopping" | "crashed";

/** How a process ended; `reason` when the host knows better than the signal ("memory limit exceeded (limit 64 MiB)"). */
export interface ExitCause {
  exitCode?: number;
  signal?: string;
  reason?: string;
}

export interface StopHow {
  signal: NodeJS.Signals;
  timeoutMs: number;
}

/** The process a supervisor watches: a started or adopted app process (apps/supervisors.ts), or a test's fake. */
export interface SupervisedProcess {
  readonly pid: number;
  isAlive(): boolean;
  /** Resolves once the process has ended (and its record and cgroups are gone); the same promise every call. */
  exited(): Promise<ExitCause>;
  /** Stop signal to the process group, SIGKILL after the timeout; resolves once it has exited. */
  stop(how: StopHow): Promise<StopResult>;
}

/** What a supervisor needs from the host; production wires the process and health modules in, tests fakes. */
export interface SupervisorPorts {
  /** Spawns the app color's process. */
  launch(): Promise<SupervisedProcess>;
  /** The health gate: resolves once the process passes it, rejects when it runs out, the process exits, or `signal` aborts. */
  gate(proc: SupervisedProcess, signal: AbortSignal): Promise<void>;
  /** One live health check; never rejects. */
  probe(): Promise<boolean>;
}

/** Restarts after a crash in service wait backoffDelayMs(attempt, baseMs, capMs): doubling, capped, jittered. */
export interface RestartPolicy {
  baseMs: number;
  capMs: number;
  /** A crash after running this long starts the backoff over from baseMs. */
  resetAfterMs: number;
  /** Jitter source in [0, 1); a test passes () => 1 for exact delays. */
  random: () => number;
}

/** 1 s doubling to 30 s; a process that ran a minute starts over at 1 s. The only restart constants in the agent. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseMs: 1000, capMs: 30_000, resetAfterMs: 60_000, random: Math.random };

/** Consecutive failed live checks that make a healthy color unhealthy: one slow answer on a busy host is not an outage. */
export const UNHEALTHY_AFTER_FAILURES = 3;
/** Live checks run at the spec's health.live_interval (default 5 s), never more often than this: the gate is short, live checks run for ever. */
export const MIN_LIVE_CHECK_INTERVAL_MS = 1000;

/** Schedules `fn` after `ms`; returns its cancel. Injected so tests advance time by hand. */
export type Schedule = (fn: () => void, ms: number) => () => void;

const realSchedule: Schedule = (fn, ms) => {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

export interface SupervisorOptions {
  app: string;
  color: Color;
  release: string;
  ports: SupervisorPorts;
  /** The spec's health.live_interval (not the gate's interval) and the passes that bring an unhealthy color back to healthy. */
  liveCheck: { intervalMs: number; healthyThreshold: number };
  restart?: Partial<RestartPolicy>;
  log?: Logger;
  /** Monotonic clock, ms (backoff reset). */
  now?: () => number;
  schedule?: Schedule;
}

export interface SupervisorEvents {
  transition: [{ from: SupervisorState; to: SupervisorState; reason: string }];
  /** The process ended; `requested` is false for a crash. `cause` reads "signal SIGKILL", "exit code 1", or the host's reason. */
  exit: [{ pid: number; requested: boolean; cause: string } & ExitCause];
  /** A crash in service will be started again after `delayMs`. */
  restart: [{ attempt: number; delayMs: number }];
  /** A restarted process passed its health gate. */
  restarted: [{ pid: number; attempt: number }];
}

/*
 * The life of one app color. Every change goes through transition(), which
 * refuses any edge not drawn here. "In service" means nginx should point at
 * it: it passed its gate since start(), was adopted as live, or serve() was
 * called; drain() and stop() end it. Only a crash in service is restarted.
 *
 *  stopped ──start(), adopt() in service──────────────────▶ starting
 *  stopped ──adopt() out of service (a warm color)────────▶ draining
 *  starting ──gate passes─────────────────────────────────▶ healthy
 *  starting ──gate runs out, process alive────────────────▶ unhealthy
 *  starting ──spawn fails, or exits before the gate───────▶ crashed
 *  starting, healthy, unhealthy ──drain()─────────────────▶ draining
 *  healthy ──UNHEALTHY_AFTER_FAILURES live checks fail────▶ unhealthy
 *  unhealthy ──healthyThreshold live checks pass──────────▶ healthy
 *  draining ──serve() (a rollback switched back to it)────▶ healthy
 *  healthy, unhealthy, draining ──exits unasked───────────▶ crashed
 *  crashed ──in service: after the restart backoff────────▶ starting
 *  crashed ──stop()───────────────────────────────────────▶ stopped
 *  starting, healthy, unhealthy, draining ──stop()────────▶ stopping ──exited──▶ stopped
 */
const TRANSITIONS: Readonly<Record<SupervisorState, readonly SupervisorState[]>> = {
  stopped: ["starting", "draining"],
  starting: ["healthy", "unhealthy", "crashed", "draining", "stopping"],
  healthy: ["unhealthy", "draining", "stopping", "crashed"],
  unhealthy: ["healthy", "draining", "stopping", "crashed"],
  draining: ["healthy", "stopping", "crashed"],
  stopping: ["stopped"],
  crashed: ["starting", "stopped"],
};

/**
 * Supervises one app color: starts it and gates it on health, adopts it after
 * an agent restart, checks its health while it serves, restarts it with
 * backoff when it crashes in service, drains and stops it. The process itself
 * never depends on the agent staying up: a restarted agent adopts it.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly app: string;
  readonly color: Color;
  readonly release: string;
  readonly #options: SupervisorOptions;
  readonly #restart: RestartPolicy;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #schedule: Schedule;
  #state: SupervisorState = "stopped";
  #proc: SupervisedProcess | undefined;
  #spawning: Promise<SupervisedProcess> | undefined;
  #gate: AbortController | undefined;
  #stopping: Promise<StopResult> | undefined;
  #cancelRestart: (() => void) | undefined;
  #cancelCheck: (() => void) | undefined;
  #inService = false;
  /** Consecutive restarts, for the backoff. */
  #restarts = 0;
  #startedAt = 0;
  #checks = { passes: 0, failures: 0 };

  constructor(options: SupervisorOptions) {
    super();
    this.app = options.app;
    this.color = options.color;
    this.release = options.release;
    this.#options = options;
    this.#restart = { ...DEFAULT_RESTART_POLICY, ...options.restart };
    this.#log = options.log ?? createLogger("supervisor");
    this.#now = options.now ?? (() => performance.now());
    this.#schedule = options.schedule ?? realSchedule;
  }

  get state(): SupervisorState {
    return this.#state;
  }

  /** The pid of the process being supervised, while there is one. */
  get pid(): number | undefined {
    return this.#state === "crashed" || this.#state === "stopped" ? undefined : this.#proc?.pid;
  }

  /**
   * Spawns the process; resolves once it runs, with the health gate's outcome
   * as `healthy` (it rejects with the gate's error: the state is then
   * unhealthy, process alive, or crashed). Rejects when the spawn fails.
   */
  async start(): Promise<{ pid: number; healthy: Promise<void> }> {
    this.#expect("start", ["stopped"]);
    this.#inService = false;
    this.#restarts = 0;
    const { proc, signal } = await this.#spawn("start requested");
    const healthy = this.#passGate(proc, signal);
    healthy.catch(() => undefined);
    return { pid: proc.pid, healthy };
  }

  /**
   * Takes over a process that survived an agent restart. In service, it runs
   * the health gate (the returned promise settles with it); out of service
   * (a warm color kept for a rollback), it is draining at once.
   */
  adopt(proc: SupervisedProcess, options: { inService: boolean }): Promise<void> {
    this.#expect("adopt", ["stopped"]);
    this.#restarts = 0;
    this.#attach(proc);
    if (!options.inService) {
      this.#transition("draining", `adopted pid ${proc.pid}, out of service`);
      return Promise.resolve();
    }
    this.#inService = true;
    const gate = new AbortController();
    this.#gate = gate;
    this.#transition("starting", `adopting pid ${proc.pid}`);
    const healthy = this.#passGate(proc, gate.signal);
    healthy.catch(() => undefined);
    return healthy;
  }

  /** Takes the color out of service (traffic switched away): no live checks, and a crash from here on is not restarted. */
  drain(): void {
    this.#inService = false;
    this.#cancelCheck?.();
    if (this.#state === "crashed") this.#cancelRestart?.();
    if (this.#state !== "starting" && this.#state !== "healthy" && this.#state !== "unhealthy") return;
    this.#gate?.abort();
    this.#transition("draining", "traffic switched away");
  }

  /** Puts the color (back) in service: nginx points at it now. A crashed one is restarted. */
  serve(): void {
    this.#expect("serve", ["starting", "healthy", "unhealthy", "draining", "crashed"]);
    if (this.#inService) return;
    this.#inService = true;
    if (this.#state === "crashed") return this.#scheduleRestart("serve() on a crashed color");
    if (this.#state === "draining") this.#transition("healthy", "traffic switched back to it");
    if (this.#proc && (this.#state === "healthy" || this.#state === "unhealthy")) this.#scheduleLiveCheck(this.#proc);
  }

  /** One health check now (a warm color about to take traffic again). */
  probe(): Promise<boolean> {
    return this.#options.ports.probe();
  }

  /**
   * Stops the process: stop signal to its group, SIGKILL after the timeout.
   * Idempotent; cancels a pending restart, live check or health gate.
   */
  stop(how: StopHow): Promise<StopResult> {
    if (this.#stopping) return this.#stopping;
    this.#inService = false;
    this.#cancelRestart?.();
    this.#cancelCheck?.();
    switch (this.#state) {
      case "stopped":
        return Promise.resolve({ timedOut: false, durationMs: 0 });
      case "crashed":
        this.#transition("stopped", "stop requested while crashed");
        return Promise.resolve({ timedOut: false, durationMs: 0 });
      case "stopping":
        // A previous attempt failed (ERR_PROCESS_STOP_FAILED): try again.
        break;
      default:
        this.#transition("stopping", "stop requested");
    }
    this.#gate?.abort();
    this.#stopping = this.#stopNow(how).finally(() => (this.#stopping = undefined));
    return this.#stopping;
  }

  async #spawn(reason: string): Promise<{ proc: SupervisedProcess; signal: AbortSignal }> {
    const gate = new AbortController();
    this.#gate = gate;
    // The previous process (if any) is dead; stop() must wait for the new one, not stop the old.
    this.#proc = undefined;
    this.#transition("starting", reason);
    // stop() from a transition listener: do not spawn at all.
    if (gate.signal.aborted) throw this.#interruptedWhileStarting();
    this.#spawning = this.#options.ports.launch().then((proc) => this.#attach(proc));
    let proc: SupervisedProcess;
    try {
      proc = await this.#spawning;
    } catch (error) {
      if (this.#state === "starting") this.#crashed(`spawn failed: ${(error as Error).message}`);
      throw error;
    } finally {
      this.#spawning = undefined;
    }
    if (gate.signal.aborted) throw this.#interruptedWhileStarting();
    return { proc, signal: gate.signal };
  }

  #attach(proc: SupervisedProcess): SupervisedProcess {
    this.#proc = proc;
    this.#startedAt = this.#now();
    void proc.exited().then((cause) => this.#onExit(proc, cause));
    return proc;
  }

  async #passGate(proc: SupervisedProcess, signal: AbortSignal): Promise<void> {
    try {
      await this.#options.ports.gate(proc, signal);
    } catch (error) {
      if (this.#state !== "starting" || this.#proc !== proc || signal.aborted) throw this.#interruptedWhileStarting(error);
      if (proc.isAlive()) {
        this.#transition("unhealthy", (error as Error).message);
        if (this.#inService) this.#scheduleLiveCheck(proc);
      } else {
        this.#crashed(`exited ${describeExit(await proc.exited())} before it passed its health gate`);
      }
      throw error;
    }
    if (this.#state !== "starting" || this.#proc !== proc) throw this.#interruptedWhileStarting();
    this.#inService = true;
    this.#transition("healthy", "passed its health gate");
    this.#scheduleLiveCheck(proc);
  }

  #scheduleLiveCheck(proc: SupervisedProcess): void {
    this.#cancelCheck?.();
    const intervalMs = Math.max(MIN_LIVE_CHECK_INTERVAL_MS, this.#options.liveCheck.intervalMs);
    this.#cancelCheck = this.#schedule(() => {
      this.#cancelCheck = undefined;
      void this.#liveCheck(proc);
    }, intervalMs);
  }

  /** Health from the live checks: UNHEALTHY_AFTER_FAILURES failures in a row make it unhealthy, healthyThreshold passes healthy again. */
  async #liveCheck(proc: SupervisedProcess): Promise<void> {
    const ok = await this.#options.ports.probe();
    if (proc !== this.#proc || !this.#inService || (this.#state !== "healthy" && this.#state !== "unhealthy")) return;
    this.#checks = ok ? { passes: this.#checks.passes + 1, failures: 0 } : { passes: 0, failures: this.#checks.failures + 1 };
    if (this.#state === "healthy" && this.#checks.failures >= UNHEALTHY_AFTER_FAILURES) {
      this.#transition("unhealthy", `${this.#checks.failures} live health checks failed in a row`);
    } else if (this.#state === "unhealthy" && this.#checks.passes >= Math.max(1, this.#options.liveCheck.healthyThreshold)) {
      this.#transition("healthy", `${this.#checks.passes} live health checks passed in a row`);
    }
    this.#scheduleLiveCheck(proc);
  }

  #onExit(proc: SupervisedProcess, cause: ExitCause): void {
    if (proc !== this.#proc) return;
    const requested = this.#state === "stopping";
    this.emit("exit", { pid: proc.pid, requested, cause: describeCause(cause), ...cause });
    // While starting, the health gate notices (and says why); while stopping, stop() does.
    if (this.#state === "healthy" || this.#state === "unhealthy" || this.#state === "draining") {
      this.#proc = undefined;
      this.#crashed(`pid ${proc.pid} exited unexpectedly ${describeExit(cause)}`.trim(), describeCause(cause));
    }
  }

  #crashed(reason: string, cause = reason): void {
    this.#cancelCheck?.();
    this.#transition("crashed", reason);
    if (!this.#inService) {
      this.#log.info("an instance out of service exited", { app: this.app, color: this.color, release: this.release, cause });
      return;
    }
    this.#scheduleRestart(cause);
  }

  #scheduleRestart(cause: string): void {
    if (this.#now() - this.#startedAt >= this.#restart.resetAfterMs) this.#restarts = 0;
    const attempt = ++this.#restarts;
    const delayMs = backoffDelayMs(attempt - 1, this.#restart.baseMs, this.#restart.capMs, this.#restart.random);
    // "live": in service is what nginx points at; operators and the e2e tests read this line.
    this.#log.warn("the live instance exited; restarting it", { app: this.app, color: this.color, release: this.release, cause, attempt, delayMs });
    this.emit("restart", { attempt, delayMs });
    this.#cancelRestart?.();
    this.#cancelRestart = this.#schedule(() => {
      this.#cancelRestart = undefined;
      void this.#relaunch(attempt);
    }, delayMs);
  }

  async #relaunch(attempt: number): Promise<void> {
    try {
      const { proc, signal } = await this.#spawn(`restart ${attempt} after a crash`);
      await this.#passGate(proc, signal);
      this.#log.info("the live instance is back", { app: this.app, color: this.color, release: this.release, pid: proc.pid, attempt });
      this.emit("restarted", { pid: proc.pid, attempt });
    } catch (error) {
      this.#log.warn("restart failed", { app: this.app, color: this.color, attempt, error: (error as Error).message, state: this.#state });
    }
  }

  async #stopNow(how: StopHow): Promise<StopResult> {
    const proc = this.#proc ?? (await this.#spawning?.catch(() => undefined));
    const result = proc ? await proc.stop(how) : { timedOut: false, durationMs: 0 };
    this.#proc = undefined;
    this.#transition("stopped", result.timedOut ? `killed after ${how.timeoutMs}ms` : "stopped");
    return result;
  }

  #interruptedWhileStarting(cause?: unknown): ProcessError {
    return new ProcessError("ERR_INSTANCE_STATE", `${this.app} ${this.color} was ${this.#state === "draining" ? "drained" : "stopped"} while starting`, cause ? { cause } : {});
  }

  #expect(call: string, states: readonly SupervisorState[]): void {
    if (states.includes(this.#state)) return;
    const next = states.includes("stopped") ? "; stop it first" : "";
    throw new ProcessError("ERR_INSTANCE_STATE", `cannot ${call} ${this.app} ${this.color} while it is ${this.#state}${next}`);
  }

  #transition(to: SupervisorState, reason: string): void {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(to)) {
      throw new ProcessError("ERR_INSTANCE_STATE", `${this.app} ${this.color}: no transition from ${from} to ${to} (${reason})`);
    }
    this.#state = to;
    if (to === "healthy" || to === "unhealthy") this.#checks = { passes: 0, failures: 0 };
    this.#log.info(`instance ${from} -> ${to}`, { app: this.app, color: this.color, pid: this.#proc?.pid, from, to, reason });
    this.emit("transition", { from, to, reason });
  }
}

/** "with code 1", "on SIGKILL", or "" when unknown (an adopted process). */
function describeExit(cause: ExitCause): string {
  if (cause.reason) return `(${cause.reason})`;
  if (cause.exitCode !== undefined) return `with code ${cause.exitCode}`;
  return cause.signal ? `on ${cause.signal}` : "";
}

/** "signal SIGKILL", "exit code 1", the host's reason, or "unknown cause". */
function describeCause(cause: ExitCause): string {
  if (cause.reason) return cause.reason;
  if (cause.signal) return `signal ${cause.signal}`;
  return cause.exitCode !== undefined ? `exit code ${cause.exitCode}` : "unknown cause";
}
