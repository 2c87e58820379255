import { performance } from "node:perf_hooks";
import type { Logger } from "@cutover/log";
import { isValidName, isValidRelease, v1, type cutover } from "@cutover/protocol";
import { readLivePort, switchSite, type NginxRunner, type SiteConfig, type SwitchMode, type SwitchResult } from "../nginx/index.js";
import type { ReleaseStore, ChunkSource } from "../releases/release-store.js";
import { AppStateStore, otherColor, type AppSnapshot, type Color, type ReleaseRef, type TransactionStep } from "./app-state.js";
import { admitDefinition, type AdmissionPolicy } from "./admission.js";
import { DeployError } from "./errors.js";
import { portIsFree } from "./port-check.js";
import type { ColorHandle, ProcessControl, ReleaseLaunch } from "./process-control.js";

const Status = v1.CommandResult.Status;

/**
 * Fault injection for the test suite: CUTOVER_FAULT_KILL_AT=<step> makes the
 * agent SIGKILL itself right after saving that step, as a crash there would.
 * Unset in production; read once.
 */
const FAULT_KILL_AT = process.env.CUTOVER_FAULT_KILL_AT;
function faultPoint(step: string): void {
  if (FAULT_KILL_AT === step) process.kill(process.pid, "SIGKILL");
}
type Definition = cutover.v1.AppDefinition.$Properties;
type Outcome = cutover.v1.DeployOutcome.$Properties;

export interface AppManagerOptions {
  stateDir: string;
  /** This host's address: nginx listens on it and the instances too. */
  address: string;
  switchMode: SwitchMode;
  nginx: NginxRunner;
  /** The app colors' supervisors (apps/supervisors.ts): they start, gate, restart and stop the processes. */
  instances: ProcessControl;
  /** Root apps and proxy directives this host accepts; checked before a deploy changes anything. */
  admission: AdmissionPolicy;
  releases: ReleaseStore;
  fetchChunk: ChunkSource;
  /** Free memory, free disk of the state dir, and load per core, for preflight. */
  resources(): Promise<{ memAvailableBytes: number; diskFreeBytes: number; loadPerCore: number }>;
  /** Makes sure nginx runs (the managed master is started or adopted); idempotent. */
  prepareNginx(): Promise<void>;
  /** Streams a progress event for the command being run. */
  emit(event: cutover.v1.Event.$Properties): void;
  log: Logger;
  now?: () => number;
}

export interface CommandOutcome {
  status: number;
  errorCode?: string;
  message?: string;
  deployed: Outcome;
}

/**
 * The apps on this host and the local transaction (docs/architecture.md, "The local transaction"): preflight,
 * fetch, start the idle color, health gate, switch nginx (confirmed through
 * the proxy), keep the old color warm, stop it later. The snapshot is saved
 * before every step; at every instant nginx points at an instance that passed
 * its health gate.
 */
export class AppManager {
  private readonly store: AppStateStore;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly drainTimers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;

  constructor(private readonly options: AppManagerOptions) {
    this.store = new AppStateStore(options.stateDir);
    this.now = options.now ?? Date.now;
    // Restarts are the supervisors' (process/supervisor.ts); the coordinator hears of them as events.
    options.instances.onUnexpectedExit(({ app, color, pid, release }, cause) => {
      options.emit({ atUnixMs: this.now(), kind: "process.exit", app, color, message: `${app} ${color} (pid ${pid}, ${release}) exited: ${cause}` });
    });
    options.instances.onRestarted(({ app, color, pid }) => {
      options.emit({ atUnixMs: this.now(), kind: "process.restart", app, color, message: `${app} ${color} restarted (pid ${pid})` });
    });
  }

  /** Result saved for a command id by an earlier run (survives agent restarts). */
  storedResult(commandId: string): cutover.v1.CommandResult.$Properties | undefined {
    return this.store.storedResult(commandId);
  }

  snapshot(app: string): AppSnapshot | undefined {
    return this.store.load(app);
  }

  /** Every app color with a supervisor (and the live one even without), for Hello and Heartbeat; the state is its supervisor's. */
  instances(): cutover.v1.AppInstance.$Properties[] {
    const out: cutover.v1.AppInstance.$Properties[] = [];
    for (const app of this.store.apps()) {
      const snapshot = this.store.load(app);
      for (const color of ["blue", "green"] as const) {
        const report = this.options.instances.report(app, color);
        const live = snapshot?.live?.color === color;
        if (!snapshot || (!report && !live)) continue;
        out.push({
          app,
          color,
          release: report?.release ?? snapshot.live?.release ?? "",
          port: (color === "blue" ? snapshot.definition.bluePort : snapshot.definition.greenPort) ?? 0,
          state: report?.state ?? "stopped",
          pid: report?.pid ?? 0,
          live,
          rssBytes: report?.rssBytes ?? 0,
        });
      }
    }
    return out;
  }

  /** Runs `work` with the app's lock held: one transaction per app at a time. */
  /**
   * Runs `work` after everything queued before it for the app: one transaction
   * per app at a time (a rollback waits for a crash restart in progress, it is
   * not refused).
   */
  private exclusive<T>(app: string, work: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(app) ?? Promise.resolve();
    const next = previous.then(work, work);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(app, settled);
    void settled.then(() => {
      if (this.locks.get(app) === settled) this.locks.delete(app);
    });
    return next;
  }

  private port(definition: Definition, color: Color): number {
    return color === "blue" ? definition.bluePort! : definition.greenPort!;
  }

  private site(definition: Definition, livePort: number): SiteConfig {
    const protocol = definition.proxy?.protocol === "tcp" ? "tcp" : "http";
    return {
      app: definition.name!,
      protocol,
      listenAddress: this.options.address,
      listenPort: definition.proxy!.listenPort!,
      upstreamAddress: this.options.address,
      livePort,
      // nginx cannot say which port served a stream connection, so tcp sites switch by reload (confirmed by a connect).
      switchMode: protocol === "tcp" ? "reload" : this.options.switchMode,
      extraDirectives: definition.proxy?.directives?.length ? definition.proxy.directives : undefined,
    };
  }

  private step(commandId: string, app: string, step: TransactionStep | "done", message: string, color?: Color): void {
    this.options.log.info(message, { app, step, color });
    this.options.emit({ commandId, atUnixMs: this.now(), kind: "step", app, color: color ?? "", step, message });
  }

  private prepareNginx(): Promise<void> {
    return this.options.prepareNginx();
  }

  private async remember(app: string, commandId: string, result: CommandOutcome): Promise<void> {
    const snapshot = this.store.load(app);
    if (!snapshot) return;
    snapshot.results.push({ commandId, result: { commandId, ...result } });
    await this.store.save(app, snapshot);
  }

  /** Deploys `release` by per-host blue/green; resolves with what is live afterwards (also on failure). */
  deploy(commandId: string, deploy: cutover.v1.Deploy.$Properties): Promise<CommandOutcome> {
    const definition = deploy.app;
    const release = deploy.release ?? "";
    if (!definition?.name || !isValidName(definition.name) || !isValidRelease(release) || !definition.bluePort || !definition.greenPort || !definition.proxy?.listenPort || !definition.run?.command?.length) {
      return Promise.reject(new DeployError("ERR_INVALID_DEFINITION", "the Deploy command lacks a valid app name, release, ports, proxy port or run command"));
    }
    try {
      admitDefinition(definition, this.options.admission);
    } catch (error) {
      return Promise.reject(error);
    }
    const app = definition.name;
    return this.exclusive(app, async () => {
      const sha256 = deploy.artifact?.sha256 || undefined;
      const result =
        deploy.inPlace && this.store.load(app)?.live
          ? await this.runInPlace(commandId, definition, release, sha256)
          : await this.runDeploy(commandId, definition, release, sha256, "deploy");
      await this.remember(app, commandId, result);
      return result;
    });
  }

  /** Switches back to the previous release: one switch while it is warm, else a start of it. */
  rollback(commandId: string, app: string, inPlace = false): Promise<CommandOutcome> {
    return this.exclusive(app, async () => {
      const snapshot = this.store.load(app);
      const target = snapshot?.rollbackTarget;
      if (!snapshot?.live || !target) {
        throw new DeployError("ERR_NO_PREVIOUS_RELEASE", `${app} has no previous release on this host`);
      }
      const warm = snapshot.previous && this.options.instances.running(app, snapshot.previous.color);
      let result: CommandOutcome;
      if (inPlace) {
        result = await this.runInPlace(commandId, target.definition, target.release, target.sha256);
      } else if (warm && snapshot.previous?.release === target.release && (await this.options.instances.checkOnce(warm))) {
        result = await this.switchToWarm(commandId, snapshot, warm);
      } else {
        // Cold: start the previous release again (its artifact is re-fetched if it was pruned).
        result = await this.runDeploy(commandId, target.definition, target.release, target.sha256, "rollback");
      }
      await this.remember(app, commandId, result);
      return result;
    });
  }

  private outcome(snapshot: AppSnapshot | undefined, extra: Partial<Outcome> = {}): Outcome {
    return {
      app: snapshot?.definition.name ?? "",
      release: snapshot?.live?.release ?? "",
      liveColor: snapshot?.live?.color ?? "",
      previousRelease: snapshot?.rollbackTarget?.release ?? "",
      ...extra,
    };
  }

  private async runDeploy(commandId: string, definition: Definition, release: string, sha256: string | undefined, kind: "deploy" | "rollback"): Promise<CommandOutcome> {
    const app = definition.name!;
    const started = performance.now();
    const existing = this.store.load(app);
    const snapshot: AppSnapshot = existing
      ? { ...existing, definition }
      : { definition, live: null, previous: null, rollbackTarget: null, liveRef: null, transaction: null, results: [] };

    const live = snapshot.live;
    if (live && live.release === release && this.options.instances.running(app, live.color)) {
      this.step(commandId, app, "done", `${release} is already live on ${live.color}`, live.color);
      await this.store.save(app, snapshot);
      return { status: Status.OK, deployed: this.outcome(snapshot, { unchanged: true, totalMs: performance.now() - started }) };
    }
    const target: Color = live ? otherColor(live.color) : "blue";
    const port = this.port(definition, target);
    const setStep = async (step: TransactionStep) => {
      snapshot.transaction = { commandId, kind, step, color: target, release, sha256, startedAt: this.now() };
      await this.store.save(app, snapshot);
      faultPoint(step);
    };
    let handle: ColorHandle | undefined;
    let bootMs = 0;
    try {
      await setStep("preflight");
      this.step(commandId, app, "preflight", `preflight for ${release} on ${target}`, target);
      await this.preflight(definition);

      await setStep("fetch");
      const cwd = sha256 ? await this.options.releases.ensure(app, release, sha256, this.options.fetchChunk) : this.options.releases.scratchDir(app);
      if (sha256) this.step(commandId, app, "fetch", `release ${release} unpacked`, target);

      await setStep("start");
      // A warm leftover on the idle color (a previous release kept for rollback) gives way.
      await this.stopColor(definition, target);
      if (snapshot.previous?.color === target) snapshot.previous = null;
      if (!(await portIsFree(this.options.address, port))) {
        throw new DeployError("ERR_PORT_IN_USE", `port ${port} on ${this.options.address} (the ${target} color) is in use by a process cutover does not manage; stop it or change ports.${target}`);
      }
      this.step(commandId, app, "start", `starting ${release} on ${target} (port ${port})`, target);
      const bootStarted = performance.now();
      handle = await this.options.instances.start(definition, target, release, cwd);

      await setStep("health");
      this.step(commandId, app, "health", `health gate for ${target} (pid ${handle.pid})`, target);
      await this.options.instances.waitHealthy(handle);
      bootMs = performance.now() - bootStarted;
      this.step(commandId, app, "health", `${target} is healthy after ${Math.round(bootMs)} ms`, target);

      await setStep("switch");
      await this.prepareNginx();
      const switched = await switchSite(this.options.nginx, this.site(definition, port), this.confirmOptions(definition));
      this.step(commandId, app, "switch", `nginx switched to ${target} in ${switched.durationMs.toFixed(1)} ms (${switched.mode}${switched.reloaded ? ", reloaded" : ""})`, target);
      faultPoint("switched");

      const keepMs = Number(definition.keepPreviousMs ?? 0);
      this.promote(snapshot, target, { release, sha256, definition });
      await setStep("drain");
      if (await this.fallbackWritten(app, switched)) this.scheduleDrain(app);
      snapshot.transaction = null;
      await this.store.save(app, snapshot);
      if (sha256) this.options.releases.prune(app, [release, snapshot.rollbackTarget?.release ?? ""]);
      this.step(commandId, app, "done", `${release} live on ${target}${live ? `; ${live.color} (${live.release}) kept warm for ${Math.round(keepMs / 1000)}s` : ""}`, target);
      return {
        status: Status.OK,
        deployed: this.outcome(snapshot, { switchMs: switched.durationMs, handoverMs: switched.handoverMs, bootMs, totalMs: performance.now() - started }),
      };
    } catch (error) {
      // Nothing points at the new color (switchSite restores on failure): stop it and keep what was live.
      const code = (error as { code?: string }).code ?? "ERR_INTERNAL";
      const message = (error as Error).message;
      this.step(commandId, app, snapshot.transaction?.step ?? "preflight", `failed: ${message}; ${live ? `${live.color} (${live.release}) keeps serving` : "nothing was serving"}`, target);
      if (handle || snapshot.transaction?.step === "start" || snapshot.transaction?.step === "health" || snapshot.transaction?.step === "switch") {
        await this.stopColor(definition, target).catch((stopError: Error) => this.options.log.error("could not stop the failed instance", { app, color: target, error: stopError.message }));
      }
      snapshot.transaction = null;
      await this.store.save(app, snapshot);
      return { status: Status.FAILED, errorCode: code, message, deployed: this.outcome(snapshot, { bootMs, totalMs: performance.now() - started }) };
    }
  }

  /**
   * Rolling: the host is out of the load balancer, so the live instance is
   * replaced on its own port (no second copy). If the new release fails its
   * health gate, the previous release is started again in its place.
   */
  private async runInPlace(commandId: string, definition: Definition, release: string, sha256: string | undefined): Promise<CommandOutcome> {
    const app = definition.name!;
    const started = performance.now();
    const snapshot = this.store.load(app)!;
    const live = snapshot.live!;
    const previousRef = snapshot.liveRef;
    const color = live.color;
    if (live.release === release && this.options.instances.running(app, color)) {
      return { status: Status.OK, deployed: this.outcome(snapshot, { unchanged: true, totalMs: performance.now() - started }) };
    }
    const setStep = async (step: TransactionStep) => {
      snapshot.transaction = { commandId, kind: "deploy", step, color, release, sha256, startedAt: this.now() };
      await this.store.save(app, snapshot);
      faultPoint(step);
    };
    let bootMs = 0;
    try {
      await setStep("preflight");
      this.step(commandId, app, "preflight", `preflight for ${release} in place on ${color}`, color);
      await this.preflight({ ...definition, needs: { ...definition.needs, minFreeMemoryBytes: 0 } });
      await setStep("fetch");
      const cwd = sha256 ? await this.options.releases.ensure(app, release, sha256, this.options.fetchChunk) : this.options.releases.scratchDir(app);
      await setStep("start");
      this.step(commandId, app, "start", `stopping ${live.release} and starting ${release} in place on ${color}`, color);
      await this.stopColor(snapshot.definition, color);
      const bootStarted = performance.now();
      const handle = await this.options.instances.start(definition, color, release, cwd);
      await setStep("health");
      await this.options.instances.waitHealthy(handle);
      bootMs = performance.now() - bootStarted;
      this.step(commandId, app, "health", `${color} is healthy on ${release} after ${Math.round(bootMs)} ms`, color);
      snapshot.rollbackTarget = previousRef;
      snapshot.liveRef = { release, sha256, definition };
      snapshot.live = { color, release };
      snapshot.definition = definition;
      snapshot.transaction = null;
      await this.store.save(app, snapshot);
      this.step(commandId, app, "done", `${release} live on ${color} (in place)`, color);
      return { status: Status.OK, deployed: this.outcome(snapshot, { bootMs, totalMs: performance.now() - started }) };
    } catch (error) {
      const code = (error as { code?: string }).code ?? "ERR_INTERNAL";
      const message = (error as Error).message;
      this.step(commandId, app, "health", `failed: ${message}; starting ${live.release} again`, color);
      await this.stopColor(definition, color).catch(() => {});
      snapshot.transaction = null;
      await this.store.save(app, snapshot);
      if (previousRef) {
        const cwd = previousRef.sha256 ? await this.options.releases.ensure(app, previousRef.release, previousRef.sha256, this.options.fetchChunk) : this.options.releases.scratchDir(app);
        const handle = await this.options.instances.start(previousRef.definition, color, previousRef.release, cwd);
        await this.options.instances.waitHealthy(handle);
      }
      return { status: Status.FAILED, errorCode: code, message, deployed: this.outcome(snapshot, { bootMs, totalMs: performance.now() - started }) };
    }
  }

  private async switchToWarm(commandId: string, snapshot: AppSnapshot, warm: ColorHandle): Promise<CommandOutcome> {
    const started = performance.now();
    const definition = snapshot.definition;
    const app = definition.name!;
    snapshot.transaction = { commandId, kind: "rollback", step: "switch", color: warm.color, release: warm.release, sha256: snapshot.rollbackTarget?.sha256, startedAt: this.now() };
    await this.store.save(app, snapshot);
    try {
      await this.prepareNginx();
      const switched = await switchSite(this.options.nginx, this.site(definition, warm.port), this.confirmOptions(definition));
      this.step(commandId, app, "switch", `rolled back: nginx switched to warm ${warm.color} (${warm.release}) in ${switched.durationMs.toFixed(1)} ms`, warm.color);
      this.promote(snapshot, warm.color, snapshot.rollbackTarget!);
      snapshot.transaction = null;
      await this.store.save(app, snapshot);
      if (await this.fallbackWritten(app, switched)) this.scheduleDrain(app);
      return { status: Status.OK, deployed: this.outcome(snapshot, { switchMs: switched.durationMs, totalMs: performance.now() - started }) };
    } catch (error) {
      snapshot.transaction = null;
      await this.store.save(app, snapshot);
      return { status: Status.FAILED, errorCode: (error as { code?: string }).code ?? "ERR_INTERNAL", message: (error as Error).message, deployed: this.outcome(snapshot) };
    }
  }

  /**
   * Bookkeeping once nginx serves `color`: the old live color becomes the warm
   * previous one (stopped after keep_previous) and the rollback target.
   */
  private promote(snapshot: AppSnapshot, color: Color, ref: ReleaseRef): void {
    const old = snapshot.live;
    const app = ref.definition.name ?? "";
    // The supervisors follow nginx: the old color is out of service, the new one in.
    if (old && old.color !== color) this.options.instances.drain(app, old.color);
    this.options.instances.serve(app, color);
    const keepMs = Number(ref.definition.keepPreviousMs ?? 0);
    snapshot.previous = old && old.color !== color ? { color: old.color, release: old.release, stopAfter: this.now() + keepMs } : null;
    if (old && old.color !== color) snapshot.rollbackTarget = snapshot.liveRef;
    snapshot.liveRef = ref;
    snapshot.live = { color, release: ref.release };
    snapshot.definition = ref.definition;
  }

  /**
   * After an agent restart: finish or revert what each app's transaction was
   * doing, make sure the live instance runs, and that nginx points at it.
   */
  async recover(): Promise<void> {
    for (const app of this.store.apps()) this.adoptRunning(app);
    for (const app of this.store.apps()) {
      await this.exclusive(app, () => this.recoverApp(app)).catch((error: Error) => {
        this.options.log.error("recovery failed; the app needs attention", { app, error: error.message });
      });
    }
  }

  /** After an agent restart: the processes that outlived it get a supervisor again, in service if nginx should point at them. */
  private adoptRunning(app: string): void {
    const snapshot = this.store.load(app);
    if (!snapshot) return;
    for (const color of ["blue", "green"] as const) {
      const inService = snapshot.live?.color === color;
      this.options.instances.adopt(app, color, { inService, launchOf: (release) => this.launchOf(app, snapshot, release) });
    }
  }

  /** How a release of the snapshot is started again by its supervisor: the definition it was deployed with, its release dir. */
  private launchOf(app: string, snapshot: AppSnapshot, release: string): ReleaseLaunch {
    const ref = [snapshot.liveRef, snapshot.rollbackTarget].find((r) => r?.release === release);
    const sha256 = ref?.sha256 ?? (snapshot.transaction?.release === release ? snapshot.transaction.sha256 : undefined);
    const { releases, fetchChunk } = this.options;
    return {
      definition: ref?.definition ?? snapshot.definition,
      releaseDir: () => (sha256 ? releases.ensure(app, release, sha256, fetchChunk) : Promise.resolve(releases.scratchDir(app))),
    };
  }

  private async recoverApp(app: string): Promise<void> {
    const snapshot = this.store.load(app)!;
    const tx = snapshot.transaction;
    const log = this.options.log;
    if (tx) {
      const reading = await readLivePort(this.options.nginx, app).catch(() => undefined);
      const targetPort = this.port(snapshot.definition, tx.color);
      const handle = this.options.instances.running(app, tx.color);
      const servingTarget = reading?.serving === targetPort;
      const healthy = handle ? await this.options.instances.checkOnce(handle) : false;
      if (tx.step === "drain" || (tx.step === "switch" && servingTarget && healthy)) {
        log.info("restarted after the switch: keeping the new color", { app, color: tx.color, release: tx.release });
        if (snapshot.live?.color !== tx.color) {
          const ref = tx.kind === "rollback" && snapshot.rollbackTarget?.release === tx.release ? snapshot.rollbackTarget : { release: tx.release, sha256: tx.sha256, definition: snapshot.definition };
          this.promote(snapshot, tx.color, ref);
        }
        snapshot.transaction = null;
        snapshot.results.push({ commandId: tx.commandId, result: { commandId: tx.commandId, status: Status.OK, deployed: this.outcome(snapshot) } });
      } else {
        log.warn("restarted in the middle of a transaction: reverting it", { app, step: tx.step, color: tx.color, release: tx.release });
        if (snapshot.live?.color !== tx.color) await this.stopColor(snapshot.definition, tx.color);
        snapshot.transaction = null;
        snapshot.results.push({
          commandId: tx.commandId,
          result: { commandId: tx.commandId, status: Status.FAILED, errorCode: "ERR_AGENT_RESTARTED", message: `the agent restarted during ${tx.step}; reverted`, deployed: this.outcome(snapshot) },
        });
      }
      await this.store.save(app, snapshot);
    }
    const live = snapshot.live;
    if (!live) return;
    const port = this.port(snapshot.definition, live.color);
    let handle = this.options.instances.running(app, live.color);
    if (!handle) {
      log.warn("the live instance is not running: starting it again", { app, color: live.color, release: live.release });
      const ref = snapshot.liveRef;
      const cwd = ref?.sha256 ? await this.options.releases.ensure(app, live.release, ref.sha256, this.options.fetchChunk) : this.options.releases.scratchDir(app);
      handle = await this.options.instances.start(snapshot.definition, live.color, live.release, cwd);
      await this.options.instances.waitHealthy(handle);
    }
    await this.prepareNginx();
    const reading = await readLivePort(this.options.nginx, app).catch(() => undefined);
    if (reading?.serving !== port || !this.options.nginx.isRunning()) {
      log.warn("nginx does not point at the live color: switching it", { app, color: live.color, serving: reading?.serving ?? null, port });
      await switchSite(this.options.nginx, this.site(snapshot.definition, port), { ...this.confirmOptions(snapshot.definition), forceReload: true });
    }
    this.scheduleDrain(app);
  }

  private confirmOptions(definition: Definition): { confirmPath: string; expectStatus?: number } {
    return {
      confirmPath: definition.health?.kind === "http" ? definition.health.path || "/" : "/",
      expectStatus: definition.health?.kind === "http" ? definition.health.expectStatus || undefined : undefined,
    };
  }

  private async preflight(definition: Definition): Promise<void> {
    const needs = definition.needs ?? {};
    const { memAvailableBytes, diskFreeBytes, loadPerCore } = await this.options.resources();
    const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
    if (needs.minFreeMemoryBytes && memAvailableBytes < Number(needs.minFreeMemoryBytes)) {
      throw new DeployError("ERR_PREFLIGHT_MEMORY", `only ${mib(memAvailableBytes)} of memory available, the spec needs ${mib(Number(needs.minFreeMemoryBytes))} for a second copy`);
    }
    if (needs.minFreeDiskBytes && diskFreeBytes < Number(needs.minFreeDiskBytes)) {
      throw new DeployError("ERR_PREFLIGHT_DISK", `only ${mib(diskFreeBytes)} of disk free, the spec needs ${mib(Number(needs.minFreeDiskBytes))}`);
    }
    if (needs.maxLoad && loadPerCore > needs.maxLoad) {
      throw new DeployError("ERR_PREFLIGHT_LOAD", `load per core is ${loadPerCore.toFixed(2)}, above the spec's max_load ${needs.maxLoad}`);
    }
  }

  private async stopColor(definition: Definition, color: Color): Promise<void> {
    await this.options.instances.stop(definition.name!, color, definition.run?.stopSignal || "SIGTERM", Number(definition.run?.stopTimeoutMs || 30_000));
  }

  /**
   * A live switch answers before nginx's fallback file (what a restarted nginx
   * serves) names the new color. The old color may be stopped only once it is
   * written; if it could not be, the old color is kept running rather than
   * leave a restarted nginx pointing at nothing.
   */
  private async fallbackWritten(app: string, switched: SwitchResult): Promise<boolean> {
    const error = await switched.persisted;
    if (error) this.options.log.error("nginx's fallback file for the new color was not written: keeping the old color running", { app, error: error.message });
    return error === null;
  }

  /** Stops the warm previous color when its keep_previous time is up (re-armed after a restart). */
  scheduleDrain(app: string): void {
    clearTimeout(this.drainTimers.get(app));
    const snapshot = this.store.load(app);
    const previous = snapshot?.previous;
    if (!snapshot || !previous) return;
    const timer = setTimeout(() => {
      this.drainTimers.delete(app);
      void this.exclusive(app, async () => {
        const current = this.store.load(app);
        if (!current?.previous || current.previous.color !== previous.color || current.live?.color === previous.color) return;
        this.options.log.info("keep_previous is over; stopping the old color", { app, color: previous.color, release: previous.release });
        await this.stopColor(current.definition, previous.color);
        current.previous = null;
        await this.store.save(app, current);
      }).catch((error: Error) => {
        this.options.log.error("failed to stop the old color", { app, error: error.message });
      });
    }, Math.max(0, previous.stopAfter - this.now()));
    timer.unref();
    this.drainTimers.set(app, timer);
  }

  close(): void {
    for (const timer of this.drainTimers.values()) clearTimeout(timer);
    this.drainTimers.clear();
  }
}
