import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@cutover/log";
import { checkOnce, isHealthError, waitHealthy } from "../health/index.js";
import { applyLimits, describeExit, detectCgroups, existingLimits, LimitsError, removeLimits, wrapInCgroup, type CgroupSupport, type LimitHandle } from "../limits/index.js";
import {
  adoptProcess,
  belowAgent,
  instanceRecordPath,
  processSpec,
  readEnvFile,
  readInstanceRecord,
  readRssBytes,
  removeInstanceRecord,
  startProcess,
  stopProcess,
  Supervisor,
  ProcessError,
  type AppProcess,
  type ExitStatus,
  type ExitCause,
  type RestartPolicy,
  type RootApps,
  type Schedule,
  type SupervisedProcess,
  type SupervisorPorts,
} from "../process/index.js";
import type { Color } from "./app-state.js";
import { portOf, type AppDefinition } from "./definition.js";
import { portIsFree } from "./port-check.js";
import { SecretVault } from "./secret-vault.js";
import type { ColorHandle, ColorReport, ProcessControl, ReleaseLaunch } from "./process-control.js";

export interface SupervisorsOptions {
  stateDir: string;
  address: string;
  log: Logger;
  rootApps: RootApps;
  cgroups?: CgroupSupport;
  restart?: Partial<RestartPolicy>;
  /** The supervisors' timers (live checks, restart backoff); real unref'd timers unless a test watches them. */
  schedule?: Schedule;
  /** The secret values the apps' definitions reference (the AppManager's, filled by commands); default: none held. */
  secrets?: SecretVault;
}

const NO_SECRETS = new SecretVault();

/**
 * One Supervisor per app and color, over the process, limits and health
 * modules: records in STATE/instances, logs in STATE/logs, cgroups for specs
 * with limits (removed when the process exits).
 */
export class Supervisors implements ProcessControl {
  readonly #options: SupervisorsOptions;
  readonly #cgroups: CgroupSupport;
  readonly #supervisors = new Map<string, Supervisor>();
  readonly #ports = new WeakMap<Supervisor, number>();
  /** The health gate of each start, by app/color:pid, until waitHealthy() takes it. */
  readonly #gates = new Map<string, Promise<void>>();
  readonly #logPaths = new WeakMap<SupervisedProcess, string>();
  readonly #exitListeners: ((handle: ColorHandle, cause: string) => void)[] = [];
  readonly #restartListeners: ((handle: ColorHandle) => void)[] = [];

  constructor(options: SupervisorsOptions) {
    this.#options = options;
    const cgroups = options.cgroups ?? detectCgroups();
    this.#cgroups = cgroups;
    if (cgroups.memory && cgroups.cpu) options.log.info("resource limits available", { cgroup: cgroups.version });
    else options.log.warn("resource limits unsupported here: an app whose spec asks for them will not start", { cgroup: cgroups.version, memory: cgroups.memory, cpu: cgroups.cpu, why: cgroups.why });
  }

  async start(definition: AppDefinition, color: Color, release: string, cwd: string): Promise<ColorHandle> {
    const app = definition.name;
    const existing = this.#of(app, color);
    // A crashed color waiting for its restart gives way; anything running must be stopped first.
    if (existing?.state === "crashed") await existing.stop({ signal: "SIGTERM", timeoutMs: 0 });
    else if (existing) throw new ProcessError("ERR_INSTANCE_STATE", `cannot start ${app} ${color} while it is ${existing.state}; stop it first`);
    const supervisor = this.#supervise(definition, color, release, () => Promise.resolve(cwd));
    const { pid, healthy } = await supervisor.start();
    this.#gates.set(`${app}/${color}:${pid}`, healthy);
    return this.#handle(supervisor, pid);
  }

  waitHealthy(handle: ColorHandle): Promise<void> {
    // The gate may have failed already (a crash at start): its error is what the caller must see.
    const key = `${handle.app}/${handle.color}:${handle.pid}`;
    const gate = this.#gates.get(key);
    this.#gates.delete(key);
    return gate ?? Promise.reject(new ProcessError("ERR_INSTANCE_STATE", `${handle.app} ${handle.color} (pid ${handle.pid}) is not being started`));
  }

  get address(): string {
    return this.#options.address;
  }

  portIsFree(port: number): Promise<boolean> {
    return portIsFree(this.#options.address, port);
  }

  async checkOnce(handle: ColorHandle): Promise<boolean> {
    return (await this.#of(handle.app, handle.color)?.probe()) ?? false;
  }

  adopt(app: string, color: Color, options: { inService: boolean; launchOf: (release: string) => ReleaseLaunch }): ColorHandle | undefined {
    const { stateDir, log } = this.#options;
    const path = instanceRecordPath(stateDir, app, color);
    if (this.#of(app, color) || !existsSync(path)) return this.running(app, color);
    let record;
    try {
      record = readInstanceRecord(path);
    } catch (error) {
      log.warn("unreadable instance record", { app, color, error: (error as Error).message });
      return undefined;
    }
    const adopted = adoptProcess(record);
    if (!adopted.alive) {
      log.info("stale instance record, not adopted", { app, color, pid: record.pid, reason: adopted.reason });
      removeInstanceRecord(stateDir, record);
      return undefined;
    }
    const { release } = adopted.process.record;
    const launch = options.launchOf(release);
    const supervisor = this.#supervise(launch.definition, color, release, launch.releaseDir);
    void supervisor.adopt(this.#supervised(adopted.process, existingLimits(this.#cgroups, app, color)), { inService: options.inService });
    return this.#handle(supervisor, adopted.process.pid);
  }

  running(app: string, color: Color): ColorHandle | undefined {
    const supervisor = this.#of(app, color);
    const pid = supervisor?.pid;
    return supervisor && pid !== undefined ? this.#handle(supervisor, pid) : undefined;
  }

  drain(app: string, color: Color): void {
    this.#of(app, color)?.drain();
  }

  serve(app: string, color: Color): void {
    const supervisor = this.#of(app, color);
    if (supervisor && supervisor.state !== "stopping") supervisor.serve();
  }

  async stop(app: string, color: Color, signal: string, timeoutMs: number): Promise<void> {
    const supervisor = this.#of(app, color);
    if (!supervisor) return;
    const result = await supervisor.stop({ signal: signal as NodeJS.Signals, timeoutMs });
    this.#options.log.info("instance stopped", { app, color, release: supervisor.release, timedOut: result.timedOut, durationMs: Math.round(result.durationMs) });
  }

  report(app: string, color: Color): ColorReport | undefined {
    const supervisor = this.#of(app, color);
    if (!supervisor) return undefined;
    const pid = supervisor.pid ?? 0;
    return { state: supervisor.state, release: supervisor.release, pid, rssBytes: pid ? readRssBytes(pid) : 0 };
  }

  onUnexpectedExit(listener: (handle: ColorHandle, cause: string) => void): void {
    this.#exitListeners.push(listener);
  }

  onRestarted(listener: (handle: ColorHandle) => void): void {
    this.#restartListeners.push(listener);
  }

  #of(app: string, color: Color): Supervisor | undefined {
    return this.#supervisors.get(`${app}/${color}`);
  }

  #handle(supervisor: Supervisor, pid: number): ColorHandle {
    return { app: supervisor.app, color: supervisor.color, release: supervisor.release, port: this.#ports.get(supervisor) ?? 0, pid };
  }

  /** A new supervisor for the color, in the place of a stopped one; it leaves the map once stopped. */
  #supervise(definition: AppDefinition, color: Color, release: string, releaseDir: () => Promise<string>): Supervisor {
    const app = definition.name;
    const port = portOf(definition, color);
    const key = `${app}/${color}`;
    const supervisor = new Supervisor({
      app,
      color,
      release,
      ports: this.#portsOf(definition, color, release, releaseDir),
      // Live checks at the spec's live_interval, not the gate's interval: the gate is short, live checks run for ever.
      liveCheck: { intervalMs: definition.health.liveIntervalMs, healthyThreshold: definition.health.healthyThreshold },
      restart: this.#options.restart,
      log: this.#options.log,
      schedule: this.#options.schedule,
    });
    this.#ports.set(supervisor, port);
    supervisor.on("transition", ({ to }) => {
      if (to === "stopped" && this.#supervisors.get(key) === supervisor) this.#supervisors.delete(key);
    });
    supervisor.on("exit", ({ pid, requested, cause }) => {
      if (!requested) for (const listener of this.#exitListeners) listener(this.#handle(supervisor, pid), cause);
    });
    supervisor.on("restarted", ({ pid }) => {
      for (const listener of this.#restartListeners) listener(this.#handle(supervisor, pid));
    });
    this.#supervisors.set(key, supervisor);
    return supervisor;
  }

  #portsOf(definition: AppDefinition, color: Color, release: string, releaseDir: () => Promise<string>): SupervisorPorts {
    const app = definition.name;
    const port = portOf(definition, color);
    const { address } = this.#options;
    const gate = definition.health;
    return {
      launch: () => this.#launch(definition, color, release, releaseDir),
      gate: async (proc, signal) => {
        try {
          await waitHealthy({ address, port, ...gate, signal, isAlive: () => proc.isAlive() });
        } catch (error) {
          if (!isHealthError(error, "ERR_PROCESS_EXITED_EARLY")) throw error;
          // The exit read the cgroup's OOM counter before the cgroup went.
          const { reason } = await proc.exited();
          if (!reason) throw error;
          throw new LimitsError(
            "ERR_LIMITS_MEMORY_EXCEEDED",
            `${reason}: ${app} ${color} (${release}) was killed by the kernel before it passed its health gate; raise limits.memory in the spec or make the app use less (instance log: ${this.#logPaths.get(proc) ?? "?"})`,
            { cause: error },
          );
        }
      },
      probe: async () => (await checkOnce({ address, port }, gate.check, gate.timeoutMs)).ok,
    };
  }

  async #launch(definition: AppDefinition, color: Color, release: string, releaseDir: () => Promise<string>): Promise<SupervisedProcess> {
    const { stateDir, address, rootApps, log } = this.#options;
    const app = definition.name;
    const port = portOf(definition, color);
    const cwd = await releaseDir();
    // Every start checks run.user again (restarts and rollbacks too): a root app needs allow_root_apps;
    // and reads the env file and the secrets again: what the host and the last command hold now.
    const { command, env, user, envFile } = definition.run;
    const secretEnv = (this.#options.secrets ?? NO_SECRETS).environment(app, definition.run.secretEnv);
    const fileEnv = envFile ? await readEnvFile(envFile) : undefined;
    const spec = processSpec({ command, env, user, fileEnv, secretEnv }, { port, address, color, release, releaseDir: cwd }, { rootApps });
    const { memoryBytes, cpuCores } = definition.limits;
    // ERR_LIMITS_UNSUPPORTED ("limits unsupported here: ...") on a host without cgroups: nothing is started.
    const limits = memoryBytes || cpuCores ? await applyLimits(this.#cgroups, { app, color, memoryBytes, cpuCores }) : undefined;
    let proc: AppProcess;
    try {
      // Below the agent's priority, then (with limits) through a wrapper that joins the cgroups
      // and execs the app: no instant outside the limits. The record holds the app's own argv.
      const prioritized = belowAgent(spec);
      proc = await startProcess(limits ? wrapInCgroup(prioritized, limits).spec : prioritized, { app, color, release, port, address }, { stateDir, logDir: join(stateDir, "logs") });
    } catch (error) {
      if (limits) await removeLimits(limits);
      throw error;
    }
    log.info("instance started", { app, color, release, pid: proc.pid, port, ...(limits && { memoryLimitBytes: limits.memoryBytes, cpuLimitCores: limits.cpuCores }) });
    return this.#supervised(proc, limits);
  }

  /** The process as a supervisor sees it; its exit reads the OOM counter, then deletes the record and the cgroups. */
  #supervised(proc: AppProcess, limits: LimitHandle | undefined): SupervisedProcess {
    const exited = proc.exited().then((status) => this.#afterExit(proc, status, limits));
    const handle: SupervisedProcess = {
      pid: proc.pid,
      isAlive: () => proc.isAlive(),
      exited: () => exited,
      stop: async (how) => {
        const result = await stopProcess(proc, how);
        await exited;
        return result;
      },
    };
    this.#logPaths.set(handle, proc.record.logPath);
    return handle;
  }

  async #afterExit(proc: AppProcess, status: ExitStatus, limits: LimitHandle | undefined): Promise<ExitCause> {
    const { stateDir, log } = this.#options;
    const reason = limits ? describeExit(limits, status) : undefined;
    proc.release();
    try {
      removeInstanceRecord(stateDir, proc.record);
    } catch (error) {
      log.warn("cannot delete instance record", { app: proc.record.app, color: proc.record.color, error: (error as Error).message });
    }
    if (limits) {
      const { left } = await removeLimits(limits);
      if (left.length > 0) log.warn("cgroups left behind; they are reused or removed at the next start", { app: limits.app, color: limits.color, left: left.map((l) => `${l.dir}: ${l.reason}`).join("; ") });
    }
    return { exitCode: status.exitCode, signal: status.signal, ...(reason ? { reason } : {}) };
  }
}
