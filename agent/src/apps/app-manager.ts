import { performance } from "node:perf_hooks";
import type { Logger } from "@cutover/log";
import { isValidName, isValidRelease, NAME_RULE, v1, type cutover } from "@cutover/protocol";
import type { ReleaseDirs } from "../releases/release-dirs.js";
import { admitDefinition, type AdmissionPolicy } from "./admission.js";
import type { AppProxy, ProxySwitch } from "./app-proxy.js";
import { AppStateStore, otherColor, type AppSnapshot, type Color, type ReleaseRef } from "./app-state.js";
import { appDefinitionOf, portOf, type AppDefinition } from "./definition.js";
import { DeployError } from "./errors.js";
import type { SecretVault } from "./secret-vault.js";
import type { ColorHandle, ProcessControl, ReleaseLaunch } from "./process-control.js";
import { envFaultHook, LocalTransaction, type FaultHook, type Transaction, type TransactionStep } from "./transaction.js";

const Status = v1.CommandResult.Status;
type Outcome = cutover.v1.DeployOutcome.$Properties;

export interface AppManagerOptions {
  stateDir: string;
  /** The host's proxy: the app sites of its nginx (apps/app-proxy.ts). */
  proxy: AppProxy;
  /** The app colors' supervisors (apps/supervisors.ts): they start, gate, restart and stop the processes. */
  colors: ProcessControl;
  /** Root apps and proxy directives this host accepts; checked before a deploy changes anything. */
  admission: AdmissionPolicy;
  releases: ReleaseDirs;
  /** Where the secret values Deploy and Rollback bring are kept (memory only), for the supervisors to start instances with. */
  secrets: SecretVault;
  /** Free memory, free disk of the state dir, and load per core, for preflight. */
  resources(): Promise<{ memAvailableBytes: number; diskFreeBytes: number; loadPerCore: number }>;
  /** Streams a progress event for the command being run. */
  emit(event: cutover.v1.Event.$Properties): void;
  log: Logger;
  now?: () => number;
  /** Called at each fault point of a transaction; default: CUTOVER_FAULT_KILL_AT (transaction.ts). */
  faultHook?: FaultHook;
}

export interface CommandOutcome {
  status: number;
  errorCode?: string;
  message?: string;
  deployed: Outcome;
}

/** What removing an app from this host did (RemoveApp, AppRemoved). */
export interface AppRemoval {
  stoppedColors: Color[];
  siteRemoved: boolean;
  stateRemoved: boolean;
}

/** Stop signal and timeout for an app whose saved state is gone (its definition unknown). */
const FALLBACK_STOP = { signal: "SIGTERM", timeoutMs: 10_000 };

/** Timings a successful plan adds to its outcome. */
type Timings = Pick<Outcome, "switchMs" | "handoverMs">;

/**
 * The apps on this host and their local transactions (transaction.ts draws
 * the plans; docs/architecture.md, "The local transaction"). At every instant
 * nginx points at an instance that passed its health gate.
 */
export class AppManager {
  private readonly store: AppStateStore;
  private readonly locks = new Map<string, Promise<void>>();
  private readonly drainTimers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;
  private readonly fault: FaultHook;

  constructor(private readonly options: AppManagerOptions) {
    this.store = new AppStateStore(options.stateDir);
    this.now = options.now ?? Date.now;
    this.fault = options.faultHook ?? envFaultHook();
    // Restarts are the supervisors' (process/supervisor.ts); the coordinator hears of them as events.
    options.colors.onUnexpectedExit(({ app, color, pid, release }, cause) => {
      options.emit({ atUnixMs: this.now(), kind: "process.exit", app, color, message: `${app} ${color} (pid ${pid}, ${release}) exited: ${cause}` });
    });
    options.colors.onRestarted(({ app, color, pid }) => {
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
        const report = this.options.colors.report(app, color);
        const live = snapshot?.live?.color === color;
        if (!snapshot || (!report && !live)) continue;
        out.push({
          app,
          color,
          release: report?.release ?? snapshot.live?.release ?? "",
          port: portOf(snapshot.definition, color),
          state: report?.state ?? "stopped",
          pid: report?.pid ?? 0,
          live,
          rssBytes: report?.rssBytes ?? 0,
        });
      }
    }
    return out;
  }

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

  /** Deploys `release`: blue/green, or in place when asked and something is live; resolves with what is live afterwards (also on failure). */
  deploy(commandId: string, deploy: cutover.v1.Deploy.$Properties): Promise<CommandOutcome> {
    let ref: ReleaseRef;
    try {
      // The command's edge: past here the definition is checked and this host admits it.
      const definition = appDefinitionOf(deploy.app);
      const release = deploy.release ?? "";
      if (!isValidRelease(release)) throw new DeployError("ERR_INVALID_DEFINITION", `the Deploy of ${definition.name} names no valid release (${JSON.stringify(release)})`);
      admitDefinition(definition, this.options.admission);
      ref = { release, sha256: deploy.artifact?.sha256 || undefined, definition };
      this.options.secrets.put(definition.name, deploy.secrets);
      this.options.proxy.admit(definition);
    } catch (error) {
      return Promise.reject(error);
    }
    const app = ref.definition.name;
    return this.exclusive(app, async () => {
      const snapshot = this.store.load(app);
      const result = deploy.inPlace && snapshot?.live ? await this.inPlace(commandId, "deploy", snapshot, ref) : await this.blueGreen(commandId, "deploy", snapshot, ref);
      await this.remember(app, commandId, result);
      return result;
    });
  }

  /** Switches back to the previous release: one switch while it is warm, else a start of it (in place when asked). */
  rollback(commandId: string, app: string, inPlace = false, secrets?: Record<string, string> | null): Promise<CommandOutcome> {
    // The app's secrets, for a cold rollback that starts the previous release again.
    this.options.secrets.put(app, secrets);
    return this.exclusive(app, async () => {
      const snapshot = this.store.load(app);
      const target = snapshot?.rollbackTarget;
      if (!snapshot?.live || !target) {
        throw new DeployError("ERR_NO_PREVIOUS_RELEASE", `${app} has no previous release on this host`);
      }
      const previous = snapshot.previous;
      const warm = previous?.release === target.release ? this.options.colors.running(app, previous.color) : undefined;
      let result: CommandOutcome;
      if (inPlace) result = await this.inPlace(commandId, "rollback", snapshot, target);
      else if (warm && (await this.options.colors.checkOnce(warm))) result = await this.warmSwitch(commandId, snapshot, target, warm);
      // Cold: start the previous release again (its artifact is re-fetched if it was pruned).
      else result = await this.blueGreen(commandId, "rollback", snapshot, target);
      await this.remember(app, commandId, result);
      return result;
    });
  }

  /**
   * Removes the app from this host (`cutover apps remove`), after whatever runs for it:
   * its nginx site first (users get no answer rather than a 502 from a site whose colors
   * are stopping; a site that cannot be removed fails the command with everything still
   * running), then both colors, then its saved state and unpacked releases. An app this
   * host does not have is removed already: nothing happens, nothing fails.
   */
  remove(app: string): Promise<AppRemoval> {
    if (!isValidName(app)) return Promise.reject(new DeployError("ERR_INVALID_APP", `RemoveApp names no valid app (${JSON.stringify(app)}): ${NAME_RULE}`));
    return this.exclusive(app, async () => {
      const snapshot = this.store.load(app);
      clearTimeout(this.drainTimers.get(app));
      this.drainTimers.delete(app);
      const siteRemoved = await this.options.proxy.remove(app);
      const stoppedColors: Color[] = [];
      for (const color of ["blue", "green"] as const) {
        if (!this.options.colors.report(app, color)) continue;
        const run = snapshot?.definition.run;
        await this.options.colors.stop(app, color, run?.stopSignal ?? FALLBACK_STOP.signal, run?.stopTimeoutMs ?? FALLBACK_STOP.timeoutMs);
        stoppedColors.push(color);
      }
      const releasesRemoved = this.options.releases.removeAll(app);
      const stateRemoved = this.store.remove(app) || releasesRemoved;
      this.options.log.warn("app removed from this host", { app, stoppedColors: stoppedColors.join(",") || "none", siteRemoved, stateRemoved });
      return { stoppedColors, siteRemoved, stateRemoved };
    });
  }

  private async remember(app: string, commandId: string, result: CommandOutcome): Promise<void> {
    const snapshot = this.store.load(app);
    if (!snapshot) return;
    snapshot.results.push({ commandId, result: { commandId, ...result } });
    await this.store.save(app, snapshot);
  }

  private outcome(snapshot: AppSnapshot, extra: Partial<Outcome> = {}): Outcome {
    return {
      app: snapshot.definition.name,
      release: snapshot.live?.release ?? "",
      liveColor: snapshot.live?.color ?? "",
      previousRelease: snapshot.rollbackTarget?.release ?? "",
      ...extra,
    };
  }

  /** A transaction of `plan` on `snapshot`: each step saves the snapshot holding it, and streams its progress. */
  private begin(snapshot: AppSnapshot, record: Omit<Transaction, "step" | "startedAt">): LocalTransaction {
    const app = snapshot.definition.name;
    const journal = {
      save: async (transaction: Transaction | null) => {
        snapshot.transaction = transaction;
        await this.store.save(app, snapshot);
      },
      progress: (step: TransactionStep | "done", message: string, color: Color) => this.progress(record.commandId, app, step, message, color),
    };
    return new LocalTransaction({ ...record, startedAt: this.now() }, journal, this.fault);
  }

  /** A progress event for the command, and a line in the agent log. */
  private progress(commandId: string, app: string, step: TransactionStep | "done", message: string, color: Color): void {
    this.options.log.info(message, { app, step, color });
    this.options.emit({ commandId, atUnixMs: this.now(), kind: "step", app, color, step, message });
  }

  /** Runs a plan's steps; the one failure path: undo what they changed, end the transaction, say what serves. */
  private async run(tx: LocalTransaction, snapshot: AppSnapshot, steps: () => Promise<Timings>): Promise<CommandOutcome> {
    const started = performance.now();
    try {
      const timings = await steps();
      return { status: Status.OK, deployed: this.outcome(snapshot, { ...timings, bootMs: tx.bootMs, totalMs: performance.now() - started }) };
    } catch (error) {
      const code = (error as { code?: string }).code ?? "ERR_INTERNAL";
      const message = error instanceof Error ? error.message : String(error);
      const live = snapshot.live;
      tx.progress(`failed: ${message}; ${live ? `${live.color} (${live.release}) keeps serving` : "nothing was serving"}`);
      await this.undo(tx, snapshot, error);
      await tx.end();
      return { status: Status.FAILED, errorCode: code, message, deployed: this.outcome(snapshot, { bootMs: tx.bootMs, totalMs: performance.now() - started }) };
    }
  }

  /** Puts back what a failed transaction's steps changed; never stops what nginx may point at. */
  private async undo(tx: LocalTransaction, snapshot: AppSnapshot, error: unknown): Promise<void> {
    const { plan, color, definition } = tx.record;
    if (plan === "warm-switch" || !tx.reached("start") || tx.reached("drain")) return;
    if ((error as { rollbackError?: Error }).rollbackError) {
      this.options.log.error("nginx's previous config could not be put back: keeping the new color running", { app: definition.name, color });
      return;
    }
    await this.stopColor(definition, color).catch((stopError: Error) => this.options.log.error("could not stop the failed instance", { app: definition.name, color, error: stopError.message }));
    const previous = snapshot.liveRef;
    if (plan !== "in-place" || !previous) return;
    // In place, the live release was stopped for the new one: it starts again on its port.
    try {
      await this.startGated(previous, color, await this.options.releases.dirOf(previous.definition.name, previous));
      tx.progress(`${previous.release} is running again on ${color}`);
    } catch (startError) {
      const message = startError instanceof Error ? startError.message : String(startError);
      tx.progress(`could not start ${previous.release} again on ${color}: ${message}; the app is down on this host`);
    }
  }

  /**
   * Blue/green: the release starts on the idle color beside the live one,
   * passes its gate, nginx switches to it, the old color is kept warm.
   */
  private async blueGreen(commandId: string, kind: Transaction["kind"], existing: AppSnapshot | undefined, ref: ReleaseRef): Promise<CommandOutcome> {
    const { definition, release } = ref;
    const app = definition.name;
    const snapshot: AppSnapshot = existing ?? { definition, live: null, previous: null, rollbackTarget: null, liveRef: null, transaction: null, results: [] };
    const live = snapshot.live;
    if (live && live.release === release && this.options.colors.running(app, live.color)) {
      this.progress(commandId, app, "done", `${release} is already live on ${live.color}`, live.color);
      return { status: Status.OK, deployed: this.outcome(snapshot, { unchanged: true, totalMs: 0 }) };
    }
    const color: Color = live ? otherColor(live.color) : "blue";
    const port = portOf(definition, color);
    const tx = this.begin(snapshot, { commandId, kind, plan: "blue-green", color, release, sha256: ref.sha256, definition });
    return this.run(tx, snapshot, async () => {
      await tx.advance("preflight", `preflight for ${release} on ${color}`);
      await this.preflight(definition.needs);
      await tx.advance("fetch");
      const cwd = await this.options.releases.dirOf(app, ref);
      if (ref.sha256) tx.progress(`release ${release} unpacked`);
      await tx.advance("start");
      // A warm leftover on the idle color (a previous release kept for rollback) gives way.
      await this.stopColor(definition, color);
      if (snapshot.previous?.color === color) snapshot.previous = null;
      if (!(await this.options.colors.portIsFree(port))) {
        throw new DeployError("ERR_PORT_IN_USE", `port ${port} on ${this.options.colors.address} (the ${color} color) is in use by a process cutover does not manage; stop it or change ports.${color}`);
      }
      tx.progress(`starting ${release} on ${color} (port ${port})`);
      // The switch's config is tested while the color boots (never rejects).
      const pretested = this.options.proxy.pretest(definition, port);
      await this.startGated(ref, color, cwd, tx);
      await pretested;
      await tx.advance("switch");
      const switched = await this.switchProxy(tx, definition, port, `nginx switched to ${color}`);
      this.promote(snapshot, color, ref);
      await tx.advance("drain");
      if (await this.fallbackWritten(app, switched)) this.scheduleDrain(app);
      if (ref.sha256) this.prune(app, [release, snapshot.rollbackTarget?.release ?? ""]);
      await tx.end(`${release} live on ${color}${live ? `; ${live.color} (${live.release}) kept warm for ${Math.round(definition.keepPreviousMs / 1000)}s` : ""}`);
      return { switchMs: switched.durationMs, handoverMs: switched.handoverMs };
    });
  }

  /**
   * In place (rolling): the host is out of the load balancer, so the live
   * color's release is replaced on its own port (no second copy). If the new
   * release fails its gate, the previous one is started again in its place.
   */
  private async inPlace(commandId: string, kind: Transaction["kind"], snapshot: AppSnapshot, ref: ReleaseRef): Promise<CommandOutcome> {
    const { definition, release } = ref;
    const app = definition.name;
    const live = snapshot.live;
    if (!live) throw new DeployError("ERR_NO_PREVIOUS_RELEASE", `${app} has nothing live to replace in place`);
    const color = live.color;
    if (live.release === release && this.options.colors.running(app, color)) {
      return { status: Status.OK, deployed: this.outcome(snapshot, { unchanged: true, totalMs: 0 }) };
    }
    const tx = this.begin(snapshot, { commandId, kind, plan: "in-place", color, release, sha256: ref.sha256, definition });
    return this.run(tx, snapshot, async () => {
      await tx.advance("preflight", `preflight for ${release} in place on ${color}`);
      // No second copy runs, so no memory is needed for one.
      await this.preflight({ ...definition.needs, minFreeMemoryBytes: 0 });
      await tx.advance("fetch");
      const cwd = await this.options.releases.dirOf(app, ref);
      await tx.advance("start", `stopping ${live.release} and starting ${release} in place on ${color}`);
      await this.stopColor(snapshot.definition, color);
      await this.startGated(ref, color, cwd, tx);
      snapshot.rollbackTarget = snapshot.liveRef;
      snapshot.liveRef = ref;
      snapshot.live = { color, release };
      snapshot.definition = definition;
      await tx.end(`${release} live on ${color} (in place)`);
      return {};
    });
  }

  /** Rollback while the previous color is warm and healthy: one switch back to it. */
  private async warmSwitch(commandId: string, snapshot: AppSnapshot, target: ReleaseRef, warm: ColorHandle): Promise<CommandOutcome> {
    const { definition, release } = target;
    const tx = this.begin(snapshot, { commandId, kind: "rollback", plan: "warm-switch", color: warm.color, release, sha256: target.sha256, definition });
    return this.run(tx, snapshot, async () => {
      await tx.advance("switch");
      const switched = await this.switchProxy(tx, definition, warm.port, `rolled back: nginx switched to warm ${warm.color} (${release})`);
      this.promote(snapshot, warm.color, target);
      await tx.advance("drain");
      if (await this.fallbackWritten(definition.name, switched)) this.scheduleDrain(definition.name);
      await tx.end(`${release} live on ${warm.color} again`);
      return { switchMs: switched.durationMs };
    });
  }

  /** Starts `ref` on `color` and waits for its health gate; with a transaction, its health step and boot time. */
  private async startGated(ref: ReleaseRef, color: Color, cwd: string, tx?: LocalTransaction): Promise<void> {
    const bootStarted = performance.now();
    const handle = await this.options.colors.start(ref.definition, color, ref.release, cwd);
    await tx?.advance("health", `health gate for ${color} (pid ${handle.pid})`);
    await this.options.colors.waitHealthy(handle);
    if (!tx) return;
    tx.bootMs = performance.now() - bootStarted;
    tx.progress(`${color} is healthy${ref.release === tx.record.release ? "" : ` on ${ref.release}`} after ${Math.round(tx.bootMs)} ms`);
  }

  /** The switch step's work: nginx points at `port` (warmed first), confirmed through the proxy. */
  private async switchProxy(tx: LocalTransaction, definition: AppDefinition, port: number, what: string): Promise<ProxySwitch> {
    await this.options.proxy.prepare();
    await this.options.proxy.warm(definition, port);
    const switched = await this.options.proxy.switchTo(definition, port);
    tx.progress(`${what} in ${switched.durationMs.toFixed(1)} ms (${switched.mode}${switched.reloaded ? ", reloaded" : ""})`);
    await tx.at("switched");
    return switched;
  }

  /**
   * Bookkeeping once nginx serves `color`: the old live color becomes the warm
   * previous one (stopped after keep_previous) and the rollback target.
   */
  private promote(snapshot: AppSnapshot, color: Color, ref: ReleaseRef): void {
    const old = snapshot.live;
    const app = ref.definition.name;
    // The supervisors follow nginx: the old color is out of service, the new one in.
    if (old && old.color !== color) this.options.colors.drain(app, old.color);
    this.options.colors.serve(app, color);
    snapshot.previous = old && old.color !== color ? { color: old.color, release: old.release, stopAfter: this.now() + ref.definition.keepPreviousMs } : null;
    if (old && old.color !== color) snapshot.rollbackTarget = snapshot.liveRef;
    snapshot.liveRef = ref;
    snapshot.live = { color, release: ref.release };
    snapshot.definition = ref.definition;
  }

  /**
   * After an agent restart: the processes that outlived it are supervised
   * again; each app's transaction is finished or reverted; the live color
   * runs and nginx points at it.
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
      this.options.colors.adopt(app, color, { inService, launchOf: (release) => this.launchOf(snapshot, release) });
    }
  }

  /** How a release of the snapshot is started again by its supervisor: the definition it was deployed with, its release dir. */
  private launchOf(snapshot: AppSnapshot, release: string): ReleaseLaunch {
    const tx = snapshot.transaction;
    const ref = [snapshot.liveRef, snapshot.rollbackTarget, tx && { release: tx.release, sha256: tx.sha256, definition: tx.definition }].find((r) => r?.release === release);
    const definition = ref?.definition ?? snapshot.definition;
    return { definition, releaseDir: () => this.options.releases.dirOf(definition.name, ref ?? { release }) };
  }

  private async recoverApp(app: string): Promise<void> {
    const snapshot = this.store.load(app);
    if (!snapshot) return;
    if (snapshot.transaction) await this.settle(snapshot, snapshot.transaction);
    await this.ensureLiveServes(snapshot);
    this.scheduleDrain(app);
  }

  /**
   * A transaction the agent died in: kept once it got past the switch (drain,
   * or switch with the proxy on its color and that color healthy), reverted
   * otherwise. Its command's result is stored either way.
   */
  private async settle(snapshot: AppSnapshot, tx: Transaction): Promise<void> {
    const { log, colors, proxy } = this.options;
    const app = snapshot.definition.name;
    const handle = colors.running(app, tx.color);
    const switched =
      tx.plan !== "in-place" &&
      (tx.step === "drain" || (tx.step === "switch" && handle !== undefined && (await proxy.serving(app)) === portOf(tx.definition, tx.color) && (await colors.checkOnce(handle))));
    let result: cutover.v1.CommandResult.$Properties;
    if (switched) {
      log.info("restarted after the switch: keeping the new color", { app, color: tx.color, release: tx.release });
      if (snapshot.live?.color !== tx.color) this.promote(snapshot, tx.color, { release: tx.release, sha256: tx.sha256, definition: tx.definition });
      result = { commandId: tx.commandId, status: Status.OK, deployed: this.outcome(snapshot) };
    } else {
      log.warn("restarted in the middle of a transaction: reverting it", { app, step: tx.step, color: tx.color, release: tx.release });
      // A warm color a rollback was switching to stays warm; in place, ensureLiveServes puts the live release back.
      if (tx.plan === "blue-green" && snapshot.live?.color !== tx.color) await this.stopColor(tx.definition, tx.color);
      const message = `the agent restarted during ${tx.step}; reverted`;
      result = { commandId: tx.commandId, status: Status.FAILED, errorCode: "ERR_AGENT_RESTARTED", message, deployed: this.outcome(snapshot) };
    }
    snapshot.transaction = null;
    snapshot.results.push({ commandId: tx.commandId, result });
    await this.store.save(app, snapshot);
  }

  /** The live color runs the live release, healthy, and nginx points at it. */
  private async ensureLiveServes(snapshot: AppSnapshot): Promise<void> {
    const { log, colors, proxy } = this.options;
    const live = snapshot.live;
    if (!live) return;
    const definition = snapshot.definition;
    const app = definition.name;
    const running = colors.running(app, live.color);
    if (running && running.release !== live.release) {
      log.warn("the live color runs another release (an in-place deploy was cut short): stopping it", { app, color: live.color, running: running.release, live: live.release });
      await this.stopColor(definition, live.color);
    }
    if (!colors.running(app, live.color)) {
      log.warn("the live instance is not running: starting it again", { app, color: live.color, release: live.release });
      const ref = snapshot.liveRef ?? { release: live.release, definition };
      await this.startGated(ref, live.color, await this.options.releases.dirOf(app, ref));
    }
    await proxy.prepare();
    const port = portOf(definition, live.color);
    const serving = await proxy.serving(app);
    if (serving !== port) {
      log.warn("nginx does not point at the live color: switching it", { app, color: live.color, serving, port });
      await proxy.switchTo(definition, port, { forceReload: true });
    }
  }

  private async preflight(needs: AppDefinition["needs"]): Promise<void> {
    const { memAvailableBytes, diskFreeBytes, loadPerCore } = await this.options.resources();
    const mib = (n: number) => `${Math.round(n / 1024 / 1024)} MiB`;
    if (needs.minFreeMemoryBytes && memAvailableBytes < needs.minFreeMemoryBytes) {
      throw new DeployError("ERR_PREFLIGHT_MEMORY", `only ${mib(memAvailableBytes)} of memory available, the spec needs ${mib(needs.minFreeMemoryBytes)} for a second copy`);
    }
    if (needs.minFreeDiskBytes && diskFreeBytes < needs.minFreeDiskBytes) {
      throw new DeployError("ERR_PREFLIGHT_DISK", `only ${mib(diskFreeBytes)} of disk free, the spec needs ${mib(needs.minFreeDiskBytes)}`);
    }
    if (needs.maxLoad && loadPerCore > needs.maxLoad) {
      throw new DeployError("ERR_PREFLIGHT_LOAD", `load per core is ${loadPerCore.toFixed(2)}, above the spec's max_load ${needs.maxLoad}`);
    }
  }

  /** Deletes unpacked releases but `keep`; past the switch, a failure here is logged, not the deploy's. */
  private prune(app: string, keep: string[]): void {
    try {
      this.options.releases.prune(app, keep);
    } catch (error) {
      this.options.log.warn("could not delete old releases", { app, error: (error as Error).message });
    }
  }

  private async stopColor(definition: AppDefinition, color: Color): Promise<void> {
    await this.options.colors.stop(definition.name, color, definition.run.stopSignal, definition.run.stopTimeoutMs);
  }

  /**
   * A live switch answers before nginx's fallback file (what a restarted nginx
   * serves) names the new color. The old color may be stopped only once it is
   * written; if it could not be, the old color is kept running rather than
   * leave a restarted nginx pointing at nothing.
   */
  private async fallbackWritten(app: string, switched: ProxySwitch): Promise<boolean> {
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
