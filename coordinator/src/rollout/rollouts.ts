import type { Logger } from "@cutover/log";
import { v1, type cutover } from "@cutover/protocol";
import type { AppSpec } from "@cutover/spec";
import { ApiError } from "../api/errors.js";
import { CommandError, type CommandOperation, type Fleet } from "../fleet/fleet.js";
import type { DeploymentKind, DeploymentRecord, DeploymentStore } from "../store/deployments.js";
import type { HostRecord, HostStore } from "../store/hosts.js";
import { appDefinition, matchesSelector, planBatches } from "./plan.js";

const Status = v1.CommandResult.Status;
/** Time allowed on top of the health deadline for an agent's whole Deploy (fetch, start, switch, confirm). */
export const DEPLOY_COMMAND_MARGIN_MS = 120_000;

export interface DeployRequest {
  spec: AppSpec;
  release: string;
  artifact?: { sha256: string; size: number };
  createdBy: string;
}

type HostResult = { host: HostRecord; ok: boolean; outcome?: cutover.v1.DeployOutcome.$Properties; error?: string; noPrevious?: boolean };

/**
 * Runs fleet deployments: one at a time per app, batch by batch, writing
 * every step to the store before acting on it.
 */
export class Rollouts {
  private readonly running = new Map<string, Promise<void>>();

  constructor(
    private readonly fleet: Fleet,
    private readonly hosts: HostStore,
    private readonly deployments: DeploymentStore,
    private readonly log: Logger,
  ) {}

  /** Selected hosts for a spec, sorted by name. */
  select(spec: AppSpec): HostRecord[] {
    return this.hosts.list().filter((h) => matchesSelector(h.labels, spec.hosts));
  }

  startDeploy(request: DeployRequest): DeploymentRecord {
    const { spec } = request;
    this.refuseIfBusy(spec.app);
    const selected = this.select(spec);
    if (selected.length === 0) {
      throw new ApiError(400, "ERR_NO_HOSTS", `no enrolled host matches hosts: ${JSON.stringify(spec.hosts)}; check labels with \`cutover hosts\``);
    }
    const batches = planBatches(selected, spec.strategy.batch);
    const deployment = this.deployments.create({
      app: spec.app,
      kind: "deploy",
      release: request.release,
      strategy: spec.strategy.type,
      spec,
      artifactSha256: request.artifact?.sha256,
      createdBy: request.createdBy,
      hosts: batches.flatMap((batch, index) => batch.map((h) => ({ name: h.name, batch: index + 1 }))),
    });
    const operation: CommandOperation = {
      deploy: {
        app: appDefinition(spec),
        release: request.release,
        artifact: request.artifact ? { sha256: request.artifact.sha256, sizeBytes: request.artifact.size } : undefined,
      },
    };
    this.run(deployment, () => this.runBatches(deployment, batches, operation, spec.strategy.maxFailures, spec.health.deadlineMs + DEPLOY_COMMAND_MARGIN_MS));
    return deployment;
  }

  /** Switches every host running the app back to its previous release. */
  startRollback(app: string, spec: AppSpec, createdBy: string): DeploymentRecord {
    this.refuseIfBusy(app);
    const selected = this.hosts.list().filter((h) => h.instances.some((i) => i.app === app) || matchesSelector(h.labels, spec.hosts));
    if (selected.length === 0) throw new ApiError(404, "ERR_NO_HOSTS", `no host runs ${app}`);
    const batches = planBatches(selected, spec.strategy.batch);
    const deployment = this.deployments.create({
      app,
      kind: "rollback",
      release: "(previous)",
      strategy: spec.strategy.type,
      spec,
      createdBy,
      hosts: batches.flatMap((batch, index) => batch.map((h) => ({ name: h.name, batch: index + 1 }))),
    });
    this.run(deployment, () => this.runBatches(deployment, batches, { rollback: { app } }, Number.MAX_SAFE_INTEGER, spec.health.deadlineMs + DEPLOY_COMMAND_MARGIN_MS));
    return deployment;
  }

  /** Resolves when the deployment's background work has finished (for tests and shutdown). */
  async settled(id: string): Promise<void> {
    await this.running.get(id);
  }

  private refuseIfBusy(app: string): void {
    const active = this.deployments.active(app);
    if (active) {
      throw new ApiError(409, "ERR_DEPLOYMENT_IN_PROGRESS", `${app} has a ${active.kind} in progress (${active.id}); wait for it or check \`cutover status ${app}\``);
    }
  }

  private run(deployment: DeploymentRecord, work: () => Promise<void>): void {
    const done = work()
      .catch((error: Error) => {
        this.log.error("deployment crashed", { id: deployment.id, error: error.stack ?? error.message });
        const current = this.deployments.get(deployment.id);
        if (current && (current.state === "running" || current.state === "rolling_back")) this.deployments.transition(deployment.id, "failed", `internal error: ${error.message}`);
      })
      .finally(() => this.running.delete(deployment.id));
    this.running.set(deployment.id, done);
  }

  private async runBatches(deployment: DeploymentRecord, batches: HostRecord[][], operation: CommandOperation, maxFailures: number, timeoutMs: number): Promise<void> {
    const { id } = deployment;
    const verb = deployment.kind === "deploy" ? `deploy ${deployment.release}` : "rollback";
    this.deployments.addEvent(id, null, "deployment", `${verb} of ${deployment.app} to ${batches.flat().length} host(s) in ${batches.length} batch(es)`);
    const succeeded: HostResult[] = [];
    let failures = 0;
    for (const [index, batch] of batches.entries()) {
      this.deployments.addEvent(id, null, "batch", `batch ${index + 1}/${batches.length}: ${batch.map((h) => h.name).join(", ")}`);
      const results = await Promise.all(batch.map((host) => this.runOnHost(deployment, host, operation, timeoutMs)));
      for (const result of results) {
        if (result.ok) succeeded.push(result);
        else failures++;
      }
      if (failures > maxFailures) {
        const why = `${failures} host(s) failed, more than max_failures=${maxFailures}`;
        this.deployments.transition(id, "rolling_back", why);
        for (const later of batches.slice(index + 1).flat()) this.deployments.updateHost(id, later.name, { state: "skipped" });
        await this.rollBack(deployment, succeeded, timeoutMs);
        this.deployments.transition(id, "rolled_back");
        return;
      }
    }
    if (failures === 0) this.deployments.transition(id, "succeeded");
    else this.deployments.transition(id, "failed", `${failures} host(s) failed (within max_failures=${maxFailures})`);
  }

  private async runOnHost(deployment: DeploymentRecord, host: HostRecord, operation: CommandOperation, timeoutMs: number): Promise<HostResult> {
    const { id } = deployment;
    this.deployments.updateHost(id, host.name, { state: "running", startedAt: Date.now() });
    try {
      const result = await this.fleet.sendCommand(host, operation, timeoutMs, (event) => {
        this.deployments.addEvent(id, host.name, event.kind, event.message);
      });
      const outcome = result.deployed ?? undefined;
      if (result.status === Status.OK && outcome) {
        this.deployments.updateHost(id, host.name, {
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
        this.deployments.addEvent(id, host.name, "host", outcome.unchanged ? `already serving ${outcome.release} (${outcome.liveColor})` : `serving ${outcome.release} on ${outcome.liveColor}`);
        return { host, ok: true, outcome, noPrevious: !outcome.previousRelease };
      }
      const error = `${result.message || "failed"} (${result.errorCode || Status[result.status]})`;
      this.deployments.updateHost(id, host.name, {
        state: "failed",
        error,
        liveColor: outcome?.liveColor || null,
        release: outcome?.release || null,
        finishedAt: Date.now(),
      });
      this.deployments.addEvent(id, host.name, "host", `failed: ${error}`);
      return { host, ok: false, error };
    } catch (error) {
      const message = error instanceof CommandError ? `${error.message} (${error.code})` : (error as Error).message;
      this.deployments.updateHost(id, host.name, { state: "failed", error: message, finishedAt: Date.now() });
      this.deployments.addEvent(id, host.name, "host", `failed: ${message}`);
      return { host, ok: false, error: message };
    }
  }

  /** Puts hosts that took the new release back on their previous one. */
  private async rollBack(deployment: DeploymentRecord, hosts: HostResult[], timeoutMs: number): Promise<void> {
    await Promise.all(
      hosts.map(async ({ host, noPrevious }) => {
        if (noPrevious) {
          this.deployments.addEvent(deployment.id, host.name, "host", "first release on this host: nothing to roll back to; left serving it");
          return;
        }
        try {
          const result = await this.fleet.sendCommand(host, { rollback: { app: deployment.app } }, timeoutMs, (event) =>
            this.deployments.addEvent(deployment.id, host.name, event.kind, event.message),
          );
          if (result.status === Status.OK) {
            this.deployments.updateHost(deployment.id, host.name, { state: "rolled_back", liveColor: result.deployed?.liveColor ?? null, release: result.deployed?.release ?? null });
            this.deployments.addEvent(deployment.id, host.name, "host", `rolled back to ${result.deployed?.release}`);
          } else {
            this.deployments.addEvent(deployment.id, host.name, "host", `rollback failed: ${result.message} (${result.errorCode})`);
          }
        } catch (error) {
          this.deployments.addEvent(deployment.id, host.name, "host", `rollback failed: ${(error as Error).message}`);
        }
      }),
    );
  }
}

export type { DeploymentKind };
