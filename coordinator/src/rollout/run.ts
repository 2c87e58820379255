import { randomUUID } from "node:crypto";
import type { Logger } from "@cutover/log";
import { v1, type cutover } from "@cutover/protocol";
import type { AppSpec } from "@cutover/spec";
import { CommandError, type CommandOperation, type Fleet } from "../fleet/fleet.js";
import type { AppStore, LbState } from "../store/apps.js";
import type { DeploymentRecord, DeploymentStore } from "../store/deployments.js";
import type { HostRecord, HostStore } from "../store/hosts.js";
import type { SecretStore } from "../store/secrets.js";
import { withCordoned } from "./lb-plan.js";
import { matchesSelector, virtualHostWire } from "./plan.js";
import { postSwitch } from "./hooks.js";

const Status = v1.CommandResult.Status;
/** Time allowed on top of the health deadline for an agent's whole Deploy (fetch, start, switch, confirm). */
export const DEPLOY_COMMAND_MARGIN_MS = 120_000;
/** How long a resumed deployment waits for a host's agent to reconnect before asking it again. */
export const RESUME_WAIT_MS = 30_000;
/** Time an LB agent has to apply an upstream. */
export const LB_COMMAND_TIMEOUT_MS = 30_000;

/** An app's upstream as the ApplyLb command carries it. */
export function lbSiteOf(spec: AppSpec, state: LbState): cutover.v1.LbSite.$Properties {
  const lb = spec.lb;
  return {
    app: spec.app,
    ...(lb && { virtualHost: virtualHostWire(lb) }),
    listenPort: state.listenPort,
    backends: state.backends.map((b) => ({ ...b })),
    canary: state.canary
      ? { cookie: state.canary.cookie, weightPercent: state.canary.weightPercent, pinKind: state.canary.pin?.kind ?? "", pinName: state.canary.pin?.name ?? "", pinValue: state.canary.pin?.value ?? "" }
      : undefined,
  };
}

export interface HostResult {
  host: HostRecord;
  ok: boolean;
  outcome?: cutover.v1.DeployOutcome.$Properties;
  error?: string;
}

/** Thrown at a checkpoint when the operator aborted or the progress deadline passed. */
export class RolloutStopped extends Error {
  constructor(readonly reason: "aborted" | "deadline", message: string) {
    super(message);
  }
}

export interface RolloutDeps {
  fleet: Fleet;
  hosts: HostStore;
  deployments: DeploymentStore;
  apps: AppStore;
  log: Logger;
  /**
   * The apps' secrets: their values go only into Deploy and Rollback commands to the app's hosts.
   * Rollouts always has them; work that sends neither (a cordon's load-balancer applies) may go without.
   */
  secrets?: SecretStore;
  /** Observes a host's successful deploy (metrics). */
  onHostDeployed?: (outcome: cutover.v1.DeployOutcome.$Properties) => void;
}

/**
 * One running deployment: the operations strategies are made of (deploy or
 * roll back hosts, apply the front upstream, wait for drains) and the
 * operator's controls (pause, resume, promote, abort, progress deadline).
 * Every step is written to the store before it is acted on.
 */
export class RolloutRun {
  private pauseWaiters: (() => void)[] = [];
  private abortRequested = false;
  private readonly deadlineAt: number;

  constructor(
    readonly deps: RolloutDeps,
    readonly deployment: DeploymentRecord,
    readonly spec: AppSpec,
    readonly deployOperation: (host: HostRecord, inPlace: boolean) => CommandOperation,
  ) {
    this.deadlineAt = deployment.createdAt + spec.strategy.progressDeadlineMs;
  }

  get id(): string {
    return this.deployment.id;
  }

  get state() {
    return this.deps.deployments.get(this.id)!.state;
  }

  event(host: string | null, message: string, kind = host ? "host" : "deployment"): void {
    this.deps.deployments.addEvent(this.id, host, kind, message);
  }

  get commandTimeoutMs(): number {
    return this.spec.health.deadlineMs + DEPLOY_COMMAND_MARGIN_MS;
  }

  // ---- operator controls ----

  /** Pauses at the next checkpoint (and canary strategies pause themselves). */
  pause(why: string): void {
    if (this.state === "running") this.deps.deployments.transition(this.id, "paused", why);
  }

  resume(why: string): void {
    if (this.state !== "paused") return;
    this.deps.deployments.transition(this.id, "running", why);
    for (const resolve of this.pauseWaiters.splice(0)) resolve();
  }

  abort(): void {
    this.abortRequested = true;
    for (const resolve of this.pauseWaiters.splice(0)) resolve();
  }

  /** Between steps: waits while paused; throws RolloutStopped when aborted or past the progress deadline. */
  async checkpoint(): Promise<void> {
    while (this.state === "paused" && !this.abortRequested) {
      const remaining = this.deadlineAt - Date.now();
      if (remaining <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, remaining);
        this.pauseWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (this.abortRequested) throw new RolloutStopped("aborted", "aborted by the operator");
    if (Date.now() > this.deadlineAt) {
      throw new RolloutStopped("deadline", `the progress deadline (${Math.round(this.spec.strategy.progressDeadlineMs / 1000)}s) passed`);
    }
  }

  /** Waits `ms` unless aborted or resumed early (fleet-bluegreen step pauses). */
  async pauseFor(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.pauseWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.checkpoint();
  }

  // ---- app hosts ----

  async deployHost(host: HostRecord, inPlace = false): Promise<HostResult> {
    const id = this.id;
    const { deployments } = this.deps;
    // Written before sending: a coordinator restarted mid-step re-asks with the same id and the agent answers from its stored result.
    const recorded = deployments.host(id, host.name)?.commandId;
    const commandId = recorded ?? randomUUID();
    deployments.updateHost(id, host.name, { state: "running", startedAt: Date.now(), commandId });
    try {
      await deployments.written();
      // A host whose agent is reconnecting (after a coordinator restart, a network blip) gets a moment before it counts as failed.
      await this.deps.fleet.whenOnline(host.id, RESUME_WAIT_MS);
      const send = () =>
        this.deps.fleet.sendCommand(host, this.deployOperation(host, inPlace), this.commandTimeoutMs, (event) => deployments.addEvent(id, host.name, event.kind, event.message), commandId);
      let result: cutover.v1.CommandResult;
      for (;;) {
        try {
          result = await send();
          break;
        } catch (error) {
          // The link dropped mid-step: the agent finishes or reverts the step by itself. The rollout
          // waits for the host (up to the progress deadline) and asks again with the same command id.
          if (!(error instanceof CommandError) || error.code !== "ERR_HOST_DISCONNECTED") throw error;
          this.event(host.name, "unreachable mid-step: waiting for it to come back (it finishes or reverts the step by itself)");
          const back = await this.deps.fleet.whenOnline(host.id, Math.max(0, this.deadlineAt - Date.now()));
          if (!back) throw error;
          this.event(host.name, "back: asking for the step's outcome");
        }
      }
      const outcome = result.deployed ?? undefined;
      if (result.status === Status.OK && outcome) {
        // The host switched: its post_switch hook decides whether it counts as deployed (a failure switched it back).
        const hookFailure = await postSwitch(this, host, outcome, commandId, inPlace);
        if (hookFailure) {
          deployments.updateHost(id, host.name, { state: "failed", error: hookFailure, finishedAt: Date.now() });
          this.event(host.name, `failed: ${hookFailure}`);
          return { host, ok: false, error: hookFailure };
        }
        deployments.updateHost(id, host.name, {
          state: "succeeded",
          liveColor: outcome.liveColor,
          release: outcome.release,
          previousRelease: outcome.previousRelease || null,
          switchMs: outcome.switchMs,
          bootMs: outcome.bootMs,
          totalMs: outcome.totalMs,
          handoverMs: outcome.handoverMs,
          finishedAt: Date.now(),
        });
        this.deps.onHostDeployed?.(outcome);
        this.event(host.name, outcome.unchanged ? `already serving ${outcome.release} (${outcome.liveColor})` : `serving ${outcome.release} on ${outcome.liveColor}`);
        return { host, ok: true, outcome };
      }
      const error = `${result.message || "failed"} (${result.errorCode || Status[result.status]})`;
      deployments.updateHost(id, host.name, { state: "failed", error, liveColor: outcome?.liveColor || null, release: outcome?.release || null, totalMs: outcome?.totalMs, finishedAt: Date.now() });
      this.event(host.name, `failed: ${error}`);
      return { host, ok: false, error };
    } catch (error) {
      const message = error instanceof CommandError ? `${error.message} (${error.code})` : (error as Error).message;
      deployments.updateHost(id, host.name, { state: "failed", error: message, finishedAt: Date.now() });
      this.event(host.name, `failed: ${message}`);
      return { host, ok: false, error: message };
    }
  }

  /** Puts hosts that took the new release back on their previous one (in place for rolling). */
  async rollBackHosts(results: HostResult[], inPlace = false): Promise<void> {
    await Promise.all(
      results.map(async ({ host, outcome }) => {
        if (outcome && !outcome.previousRelease) {
          this.event(host.name, "first release on this host: nothing to roll back to; left serving it");
          return;
        }
        try {
          await this.deps.fleet.whenOnline(host.id, RESUME_WAIT_MS);
          // Every secret the app has: a cold rollback starts the previous release, whose definition on the host names which it reads.
          const secrets = this.deps.secrets?.values(this.spec.app);
          const result = await this.deps.fleet.sendCommand(host, { rollback: { app: this.spec.app, inPlace, secrets } }, this.commandTimeoutMs, (event) =>
            this.deps.deployments.addEvent(this.id, host.name, event.kind, event.message),
          );
          if (result.status === Status.OK) {
            this.deps.deployments.updateHost(this.id, host.name, { state: "rolled_back", liveColor: result.deployed?.liveColor ?? null, release: result.deployed?.release ?? null });
            this.event(host.name, `rolled back to ${result.deployed?.release}`);
          } else {
            this.event(host.name, `rollback failed: ${result.message} (${result.errorCode})`);
          }
        } catch (error) {
          this.event(host.name, `rollback failed: ${(error as Error).message}`);
        }
      }),
    );
  }

  // ---- front load balancers ----

  lbHosts(): HostRecord[] {
    const lb = this.spec.lb;
    if (!lb) return [];
    return this.deps.hosts.list().filter((h) => matchesSelector(h.labels, lb.hosts));
  }

  /** Applies the upstream on every LB host; saves it as the app's LB state once all applied. Throws on the first failure. */
  async applyLb(wanted: LbState, why: string): Promise<void> {
    // Cordoned hosts stay drained whatever the strategy asks for (`cutover hosts cordon`).
    const cordoned = new Set(this.deps.hosts.list().filter((h) => h.cordon !== null).map((h) => h.name));
    const state = withCordoned(wanted, this.deps.apps.lbState(this.spec.app), cordoned);
    const lbHosts = this.lbHosts();
    if (lbHosts.length === 0) throw new Error(`no enrolled host matches lb.hosts ${JSON.stringify(this.spec.lb?.hosts)}`);
    this.event(null, `load balancer: ${why}`, "lb");
    const site = lbSiteOf(this.spec, state);
    await Promise.all(
      lbHosts.map(async (lb) => {
        await this.deps.fleet.whenOnline(lb.id, RESUME_WAIT_MS);
        const result = await this.deps.fleet.sendCommand(lb, { applyLb: { site } }, LB_COMMAND_TIMEOUT_MS);
        if (result.status !== Status.OK) throw new Error(`load balancer ${lb.name}: ${result.message} (${result.errorCode})`);
        this.event(lb.name, `upstream applied in ${result.lbApplied?.durationMs?.toFixed(1)} ms (${result.lbApplied?.mode}${result.lbApplied?.reloaded ? ", reloaded" : ""})`, "lb");
      }),
    );
    this.deps.apps.saveLbState(this.spec.app, state);
  }

  /** Waits on every LB host until no request to `hosts` is in flight (bounded by lb.drain_timeout). */
  async waitDrained(hosts: string[]): Promise<void> {
    const timeoutMs = this.spec.lb?.drainTimeoutMs ?? 30_000;
    await Promise.all(
      this.lbHosts().map(async (lb) => {
        await this.deps.fleet.whenOnline(lb.id, RESUME_WAIT_MS);
        const result = await this.deps.fleet.sendCommand(lb, { waitDrained: { app: this.spec.app, hosts, timeoutMs } }, timeoutMs + LB_COMMAND_TIMEOUT_MS);
        const drained = result.drained;
        this.event(lb.name, drained?.drained ? `drained ${hosts.join(", ")} in ${Math.round(drained.waitedMs ?? 0)} ms` : `drain timeout: ${drained?.inFlight ?? "?"} request(s) still in flight to ${hosts.join(", ")}`, "lb");
      }),
    );
  }
}
