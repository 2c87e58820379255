import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../state/atomic-write.js";
import {
  findModules,
  managedCapabilities,
  moduleDirs,
  parseBuild,
  type NginxBuild,
  type NginxCapabilities,
} from "./capabilities.js";
import { DEFAULT_NGINX_BINARY, startCommand, testCommand, versionCommand } from "./commands.js";
import { NginxError } from "./errors.js";
import { commandOutput, runCommand } from "./exec.js";
import { MAX_UNIX_SOCKET_PATH, managedPaths, renderManagedMain, type ManagedMainOptions, type ManagedPaths } from "./main-conf.js";
import { isNginxMaster, pollUntil, readPidFile } from "./proc.js";
import { loadProbeToken, PROBE_TOKEN_FILE } from "./probe-token.js";
import { TestMemo } from "./test-memo.js";
import {
  DEFAULT_RELOAD_TIMEOUT_MS,
  listConfFiles,
  reloadMaster,
  waitRetired,
  withCandidates,
  type Candidates,
  type Handover,
  type NginxRunner,
  type ReloadOptions,
  type SupportFile,
  type TestResult,
} from "./runner.js";
import type { SiteProtocol } from "./site.js";
import { findWorkerUser, type WorkerUser } from "./worker-user.js";

export const DEFAULT_START_TIMEOUT_MS = 10_000;
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** A daemonizing master writes its pid file just after the start command exits; polled at this period. */
const PID_POLL_INTERVAL_MS = 5;

export interface ManagedRunnerOptions {
  /** The agent's state dir; everything lives in `<stateDir>/nginx/`. */
  stateDir: string;
  /** The host's probe token (probe-token.ts); default: the one kept in the state dir (made there the first time). */
  probeToken?: string;
  binary?: string;
  workerProcesses?: number | "auto";
  workerConnections?: number;
  /** Where to look for dynamic modules (tests, non-Debian layouts). */
  moduleDirs?: string[];
  /** false: do not load the Lua module (an agent on `--switch reload`); default: load it where it is installed. */
  lua?: boolean;
  reloadTimeoutMs?: number;
  startTimeoutMs?: number;
}

export interface StopOptions {
  /** SIGQUIT: finish in-flight requests first (default). Otherwise SIGTERM. */
  graceful?: boolean;
  timeoutMs?: number;
}

export interface StartResult {
  pid: number;
  /** A master for this state dir was already running (the agent restarted) and is now ours. */
  adopted: boolean;
  /** The adopted master ran an older nginx.conf and was reloaded with the current one. */
  reconfigured: boolean;
}

/*
 * The runner's own lifecycle; whether a master is alive is always read from /proc.
 *
 *   idle ──start()──▶ starting ──▶ ready ──stop()──▶ stopping ──▶ idle
 *                        └── (failure) ──▶ idle
 */
export type ManagedRunnerState = "idle" | "starting" | "ready" | "stopping";

const TRANSITIONS: Record<ManagedRunnerState, readonly ManagedRunnerState[]> = {
  idle: ["starting", "stopping"],
  starting: ["ready", "idle"],
  ready: ["stopping", "starting"],
  stopping: ["idle", "ready"],
};

/** The agent's own nginx master, prefix `<stateDir>/nginx/`, daemonized so it outlives the agent. */
export class ManagedNginx implements NginxRunner {
  readonly probeToken: string;
  readonly kind = "managed";
  readonly paths: ManagedPaths;
  readonly binary: string;
  readonly build: NginxBuild;
  private readonly options: ManagedRunnerOptions;
  private readonly capabilities: NginxCapabilities;
  private readonly modules: string[];
  private readonly workerUser: WorkerUser | undefined;
  /** Inputs of nginx -t that passed (test-memo.ts). */
  private readonly testMemo = new TestMemo();
  private currentState: ManagedRunnerState = "idle";

  constructor(options: ManagedRunnerOptions, build: NginxBuild, exists: (path: string) => boolean = existsSync) {
    this.options = options;
    this.binary = options.binary ?? DEFAULT_NGINX_BINARY;
    this.build = build;
    this.paths = managedPaths(options.stateDir);
    this.probeToken = options.probeToken ?? loadProbeToken(join(options.stateDir, PROBE_TOKEN_FILE));
    if (this.paths.controlSocket.length > MAX_UNIX_SOCKET_PATH) {
      throw new NginxError(
        "ERR_NGINX_START_FAILED",
        `control socket path ${this.paths.controlSocket} is longer than ${MAX_UNIX_SOCKET_PATH} bytes; use a shorter state dir`,
      );
    }
    const found = findModules(options.moduleDirs ?? moduleDirs(build), exists);
    const { capabilities, load } = managedCapabilities(build, found, { lua: options.lua });
    this.capabilities = capabilities;
    this.modules = load;
    // A root master's workers take the first of www-data, nginx, nobody; a non-root
    // agent's workers are its own user, as the master is.
    this.workerUser = process.geteuid?.() === 0 ? findWorkerUser() : undefined;
  }

  get controlSocket(): string {
    return this.paths.controlSocket;
  }

  get state(): ManagedRunnerState {
    return this.currentState;
  }

  private transition(to: ManagedRunnerState): void {
    const from = this.currentState;
    if (!TRANSITIONS[from].includes(to)) {
      throw new Error(`managed nginx (${this.paths.prefix}): cannot go from ${from} to ${to}`);
    }
    this.currentState = to;
  }

  sitePath(app: string, protocol: SiteProtocol): string {
    return join(protocol === "http" ? this.paths.sitesDir : this.paths.streamsDir, `${app}.conf`);
  }

  requestLogPath(site: "app" | "lb", app: string): string {
    return join(this.paths.requestsDir, `${site}.${app}.log`);
  }

  liveSupportFiles(): readonly SupportFile[] {
    return []; // the dict and the control server are part of the managed nginx.conf
  }

  detectCapabilities(): NginxCapabilities {
    return { ...this.capabilities };
  }

  private mainOptions(): ManagedMainOptions {
    const user = this.workerUser && { name: this.workerUser.name, group: this.workerUser.group };
    return {
      paths: this.paths,
      modules: this.modules,
      lua: this.capabilities.lua,
      stream: this.capabilities.stream,
      ...(this.options.workerProcesses !== undefined ? { workerProcesses: this.options.workerProcesses } : {}),
      ...(this.options.workerConnections !== undefined ? { workerConnections: this.options.workerConnections } : {}),
      ...(user !== undefined ? { user } : {}),
    };
  }

  /** The nginx.conf this runner wants the master to run. */
  renderMain(): string {
    return renderManagedMain(this.mainOptions());
  }

  /** Pid of the live master of this prefix, or null (no pid file, dead, zombie, or someone else's pid). */
  masterPid(): number | null {
    const pid = readPidFile(this.paths.pidFile);
    return pid !== null && isNginxMaster(pid, this.paths.conf) ? pid : null;
  }

  isRunning(): boolean {
    return this.masterPid() !== null;
  }

  async test(candidates: Candidates = new Map()): Promise<TestResult> {
    const includes = {
      http: withCandidates(this.paths.sitesDir, listConfFiles(this.paths.sitesDir), candidates),
      stream: withCandidates(this.paths.streamsDir, listConfFiles(this.paths.streamsDir), candidates),
    };
    const text = renderManagedMain({ ...this.mainOptions(), includes });
    // Every file this config reads is listed here: the same bytes passed before pass again.
    const key = this.testMemo.key(text, [...includes.http, ...includes.stream]);
    if (this.testMemo.has(key)) return { ok: true, output: "", remembered: true };
    // Scratch file, rewritten by every test: no fsync needed.
    writeFileSync(this.paths.testConf, text, { mode: 0o600 });
    const result = await runCommand(testCommand(this.binary, this.paths.testConf, this.paths.prefix));
    if (result.exitCode === 0) this.testMemo.remember(key);
    return { ok: result.exitCode === 0, output: commandOutput(result) };
  }

  async reload(options?: ReloadOptions): Promise<Handover> {
    const pid = this.masterPid();
    if (pid === null) {
      throw new NginxError("ERR_NGINX_NOT_RUNNING", `managed nginx in ${this.paths.prefix} is not running; start it first`);
    }
    return reloadMaster(pid, this.paths.errorLog, this.options.reloadTimeoutMs ?? DEFAULT_RELOAD_TIMEOUT_MS, options);
  }
  retired(handover: Handover): Promise<void> {
    return waitRetired(handover, this.options.reloadTimeoutMs ?? DEFAULT_RELOAD_TIMEOUT_MS);
  }


  /**
   * Starts the master, or adopts the one already running for this state dir (the agent
   * restarted): pid file + /proc cmdline naming this config. An adopted master running
   * an older nginx.conf gets the current one through test + reload.
   */
  async start(): Promise<StartResult> {
    this.transition("starting");
    try {
      const result = await this.startOrAdopt();
      this.transition("ready");
      return result;
    } catch (error) {
      this.transition("idle");
      throw error;
    }
  }

  private async startOrAdopt(): Promise<StartResult> {
    this.makeDirs();
    const main = this.renderMain();
    const running = this.masterPid();
    if (running !== null) {
      let current: string | null = null;
      try {
        current = readFileSync(this.paths.conf, "utf8");
      } catch {}
      if (current === main) return { pid: running, adopted: true, reconfigured: false };
      const verdict = await this.test();
      if (!verdict.ok) {
        throw new NginxError("ERR_NGINX_TEST_FAILED", `new nginx.conf for ${this.paths.prefix} fails nginx -t`, {
          output: verdict.output,
        });
      }
      await writeFileAtomic(this.paths.conf, main, 0o600);
      await this.retired(await this.reload());
      return { pid: running, adopted: true, reconfigured: true };
    }
    rmSync(this.paths.pidFile, { force: true }); // stale: its master is gone
    await writeFileAtomic(this.paths.conf, main, 0o600);
    const result = await runCommand(startCommand(this.binary, this.paths.prefix, this.paths.conf));
    if (result.exitCode !== 0) {
      throw new NginxError("ERR_NGINX_START_FAILED", `nginx in ${this.paths.prefix} did not start (${result.command})`, {
        output: commandOutput(result),
      });
    }
    const pid = await pollUntil(() => this.masterPid() ?? undefined, {
      timeoutMs: this.options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
      intervalMs: PID_POLL_INTERVAL_MS,
    });
    if (pid === undefined) {
      throw new NginxError("ERR_NGINX_START_FAILED", `nginx in ${this.paths.prefix} wrote no pid file; see ${this.paths.errorLog}`);
    }
    return { pid, adopted: false, reconfigured: false };
  }

  /**
   * The prefix and its temp dir: root's, and only the workers' group may pass through
   * (0710), to the temp dirs the master creates for them; sites stay root's alone (0700),
   * since only the master reads config. Without a worker user (agent not root) all 0700.
   */
  private makeDirs(): void {
    const group = this.workerUser?.gid;
    for (const dir of [this.paths.prefix, this.paths.tempDir]) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (group !== undefined) chownSync(dir, 0, group);
      chmodSync(dir, group === undefined ? 0o700 : 0o710);
    }
    for (const dir of [this.paths.sitesDir, this.paths.streamsDir, this.paths.requestsDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Stops the master (graceful by default) and waits until it is gone. */
  async stop(options: StopOptions = {}): Promise<void> {
    this.transition("stopping");
    try {
      await this.stopMaster(options);
      this.transition("idle");
    } catch (error) {
      this.transition(this.isRunning() ? "ready" : "idle");
      throw error;
    }
  }

  private async stopMaster(options: StopOptions): Promise<void> {
    const pid = this.masterPid();
    if (pid === null) return;
    const timeoutMs = options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    const gone = () => (isNginxMaster(pid, this.paths.conf) ? undefined : true);
    for (const signal of [options.graceful === false ? "SIGTERM" : "SIGQUIT", "SIGTERM"] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        return; // already gone
      }
      if (await pollUntil(gone, { timeoutMs, intervalMs: PID_POLL_INTERVAL_MS })) return;
    }
    throw new NginxError("ERR_NGINX_STOP_FAILED", `nginx master ${pid} (${this.paths.prefix}) did not exit within ${2 * timeoutMs} ms`);
  }
}

/** Runs `nginx -V` once and returns a runner for `<stateDir>/nginx/`; call start() to start or adopt the master. */
export async function createManagedRunner(options: ManagedRunnerOptions): Promise<ManagedNginx> {
  const binary = options.binary ?? DEFAULT_NGINX_BINARY;
  const version = await runCommand(versionCommand(binary));
  if (version.exitCode !== 0) {
    throw new NginxError("ERR_NGINX_START_FAILED", `cannot run ${binary} -V; is nginx installed?`, {
      output: commandOutput(version),
    });
  }
  return new ManagedNginx(options, parseBuild(version.stderr + version.stdout));
}
