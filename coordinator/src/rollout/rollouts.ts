import type { Logger } from "@cutover/log";
import { secretNamesOf, type AppSpec } from "@cutover/spec";
import { ApiError } from "../api/errors.js";
import type { Fleet } from "../fleet/fleet.js";
import type { AppStore } from "../store/apps.js";
import type { DeploymentKind, DeploymentRecord, DeploymentStore } from "../store/deployments.js";
import type { HostRecord, HostStore } from "../store/hosts.js";
import { describeLock, type LockStore } from "../store/locks.js";
import { appDefinition, deployOrder, matchesSelector, numberedHosts, planBatches, type DeployOrder, type DeployShape } from "./plan.js";
import { RolloutRun, type RolloutDeps } from "./run.js";
import { unmeasurable } from "./analysis/measurable.js";
import { checkHost, type HostCheck } from "./preflight.js";
import { runBlueGreen } from "./strategies/bluegreen.js";
import { runCanary } from "./strategies/canary.js";
import { fleetGroups, rollbackFleetBlueGreen, runFleetBlueGreen } from "./strategies/fleet-bluegreen.js";
import { runRolling } from "./strategies/rolling.js";
import { allUp } from "./lb-plan.js";
import { rollBackAfterRestart } from "./strategies/after-restart.js";
import { planRollbackTo, type RollbackTo } from "./rollback-to.js";
import { afterPreDeploy, hooksUnsupported } from "./hooks.js";
import { unsupportedFeatures } from "./spec-capabilities.js";
import { secretValues, unsetSecretsRefusal, type SecretRolloutDeps } from "./secrets.js";

export { DEPLOY_COMMAND_MARGIN_MS } from "./run.js";

export interface DeployRequest {
  spec: AppSpec;
  /** The spec file's name, kept with the app's last spec. */
  specFile: string;
  release: string;
  artifact?: { sha256: string; size: number };
  createdBy: string;
  /** Leave out hosts that fail the resource preflight instead of refusing the deploy. */
  skipFailingHosts?: boolean;
}

/** What `selectForDeploy` needs of a deploy: the checked spec, and what the preflight weighs. */
export interface DeploySelectionRequest {
  spec: AppSpec;
  skipFailingHosts?: boolean;
  /** The artifact's size: the disk preflight makes room for it. */
  artifactBytes?: number;
}

/** A deploy's hosts and order before anything is saved or sent: what `startDeploy` runs and `deploy --plan` shows. */
export interface DeploySelection {
  /** The resource preflight of every host the spec selects. */
  preflight: HostCheck[];
  /** The hosts the deploy reaches (with skipFailingHosts, those failing the preflight left out), sorted by name. */
  hosts: HostRecord[];
  order: DeployOrder<HostRecord>;
  /** Why a deploy started now would be refused, the one it would answer with first; empty when it would run. */
  refusals: ApiError[];
  /** Hosts the spec selects that the deploy leaves out, and why (cordoned), sorted by name. */
  leftOut: LeftOutHost[];
}

/** A host the spec selects that a deploy or rollback does not reach. */
export interface LeftOutHost {
  name: string;
  /** What the deployment record says of it, e.g. `cordoned by admin at …: "disk swap"`. */
  why: string;
}

/** How a cordoned host reads where a deploy leaves it out. */
export function cordonedWhy(host: HostRecord): string {
  const cordon = host.cordon!;
  return `cordoned by ${cordon.by} at ${new Date(cordon.at).toISOString()}${cordon.reason ? `: ${JSON.stringify(cordon.reason)}` : ""}`;
}

/** What an operator can do to a running deployment. */
export type RolloutControl = "pause" | "resume" | "promote" | "abort";

/**
 * Runs fleet deployments, one at a time per app, with the strategy the spec
 * names; keeps each running one reachable for pause / resume / promote / abort.
 */
export class Rollouts {
  private readonly running = new Map<string, { run: RolloutRun; done: Promise<void> }>();
  /** Apps being removed (`cutover apps remove`): a deploy or rollback of one is refused meanwhile. */
  private readonly removing = new Set<string>();
  private readonly deps: SecretRolloutDeps;

  /** `locks`: an app locked there is refused a deploy and a rollback (`cutover lock`). */
  constructor(deps: SecretRolloutDeps, private readonly locks: LockStore) {
    this.deps = deps;
  }

  /** Selected app hosts for a spec, sorted by name; cordoned hosts are left out (`leftOut` names them). */
  select(spec: AppSpec): HostRecord[] {
    return this.deps.hosts.list().filter((h) => matchesSelector(h.labels, spec.hosts) && h.cordon === null);
  }

  /** The hosts the spec selects that are cordoned, with why. */
  leftOut(spec: AppSpec): LeftOutHost[] {
    return this.deps.hosts.list().filter((h) => matchesSelector(h.labels, spec.hosts) && h.cordon !== null).map((h) => ({ name: h.name, why: cordonedWhy(h) }));
  }

  /**
   * Which hosts a deploy of the spec reaches, in which order, and why it would be
   * refused now — decided as `startDeploy` decides it, saving and sending nothing
   * (`deploy --plan` shows it). Throws only when no host matches the spec at all.
   */
  selectForDeploy(request: DeploySelectionRequest): DeploySelection {
    const { spec } = request;
    const refusals: ApiError[] = [];
    const busy = this.busyRefusal(spec.app);
    if (busy) refusals.push(busy);
    const unset = unsetSecretsRefusal(this.deps, spec);
    if (unset) refusals.push(unset);
    let selected = this.select(spec);
    const leftOut = this.leftOut(spec);
    if (selected.length === 0 && leftOut.length > 0) {
      throw new ApiError(409, "ERR_ALL_CORDONED", `every host hosts: ${JSON.stringify(spec.hosts)} selects is cordoned (${leftOut.map((h) => h.name).join(", ")}); \`cutover hosts uncordon HOST\` puts one back`);
    }
    if (selected.length === 0) {
      throw new ApiError(400, "ERR_NO_HOSTS", `no enrolled host matches hosts: ${JSON.stringify(spec.hosts)}; check labels with \`cutover hosts\``);
    }
    const preflight = this.preflight(spec, request.artifactBytes);
    const failing = preflight.filter((c) => !c.ok);
    if (failing.length > 0) {
      const lines = failing.map((c) => `${c.name}: ${c.checks.filter((k) => !k.ok).map((k) => k.reason).join("; ")}`);
      if (!request.skipFailingHosts || failing.length === selected.length) {
        refusals.push(new ApiError(412, "ERR_PREFLIGHT_FAILED", `the resource preflight failed on ${failing.length} host(s); nothing was deployed:\n  ${lines.join("\n  ")}\n(see \`cutover check\`; --skip-failing-hosts deploys to the others)`));
      } else {
        selected = selected.filter((h) => !failing.some((c) => c.name === h.name));
      }
    }
    if (spec.lb && this.deps.hosts.list().every((h) => !matchesSelector(h.labels, spec.lb!.hosts))) {
      refusals.push(new ApiError(400, "ERR_NO_HOSTS", `no enrolled host matches lb.hosts: ${JSON.stringify(spec.lb.hosts)}`));
    }
    const blind = unmeasurable(spec, selected, this.deps.hosts.list());
    if (blind) refusals.push(new ApiError(412, "ERR_ANALYSIS_UNMEASURABLE", `the spec's analysis cannot be measured; nothing was deployed: ${blind}`));
    const noHooks = hooksUnsupported(spec, selected);
    if (noHooks) refusals.push(new ApiError(412, "ERR_AGENT_UNSUPPORTED", `${noHooks}; nothing was deployed`));
    const unsupported = unsupportedFeatures(spec, selected, this.deps.hosts.list());
    if (unsupported) refusals.push(new ApiError(412, "ERR_AGENT_UNSUPPORTED", `${unsupported}; nothing was deployed`));
    const firstBehindLb = spec.lb !== undefined && this.deps.apps.lbState(spec.app) === null && spec.strategy.type !== "fleet-bluegreen";
    let idleHosts: HostRecord[] | undefined;
    if (!firstBehindLb && spec.strategy.type === "fleet-bluegreen") {
      const probe = new RolloutRun(this.deps, { createdAt: Date.now() } as DeploymentRecord, spec, () => ({}));
      idleHosts = fleetGroups(probe, selected).idleHosts;
      if (idleHosts.length === 0) refusals.push(new ApiError(400, "ERR_NO_HOSTS", `no host of the idle group (label ${spec.strategy.groups.label}) is enrolled`));
    }
    return { preflight, hosts: selected, order: deployOrder(spec, selected, { firstBehindLb, idleHosts }), refusals, leftOut };
  }

  startDeploy(request: DeployRequest): DeploymentRecord {
    const { spec } = request;
    this.refuseIfBusy(spec.app);
    const { hosts: selected, order, refusals, leftOut } = this.selectForDeploy({ spec, skipFailingHosts: request.skipFailingHosts, artifactBytes: request.artifact?.size });
    if (refusals[0]) throw refusals[0];
    // The values of the secrets the spec references, opened once for this deployment (before anything
    // is saved: a secret that does not open refuses the deploy): only its commands carry them.
    const secrets = secretValues(this.deps, spec);
    // Checked and about to run: this is now the app's spec (status and rollback use it).
    this.deps.apps.save(spec, request.specFile);
    const definition = appDefinition(spec);
    const artifact = request.artifact ? { sha256: request.artifact.sha256, sizeBytes: request.artifact.size } : undefined;
    const deployOperation = (_host: HostRecord, inPlace: boolean) => ({ deploy: { app: definition, release: request.release, artifact, inPlace, secrets } });

    const { batches } = order;
    const work: Record<DeployShape, (run: RolloutRun) => Promise<void>> = {
      // First release behind a load balancer: nothing serves yet, so every host gets it
      // (blue/green on the host), then the load balancer is pointed at all of them.
      "first-behind-lb": async (run) => {
        run.event(null, `first release of ${spec.app} behind the load balancer: deploying every host, then adding them to the upstream`);
        await runBlueGreen(run, batches, { finishWith: async () => run.applyLb(allUp(spec, run.deps.deployments.hosts(run.id).filter((h) => h.state === "succeeded").map((h) => selected.find((s) => s.name === h.hostName)!)), "every deployed host up") });
      },
      canary: (run) => runCanary(run, selected),
      "fleet-bluegreen": (run) => runFleetBlueGreen(run, selected),
      rolling: (run) => runRolling(run, batches),
      bluegreen: (run) => runBlueGreen(run, batches),
    };
    return this.launch("deploy", spec, request.release, request.createdBy, numberedHosts(order), deployOperation, afterPreDeploy(order.batches.flat(), work[order.shape]), request.artifact?.sha256, leftOut);
  }

  /** The resource preflight for every host the spec selects (`cutover check`, and before every deploy). */
  preflight(spec: AppSpec, artifactBytes = 0): HostCheck[] {
    return this.select(spec).map((host) => checkHost(spec, host, this.deps.fleet.liveness(host.id), artifactBytes));
  }

  /**
   * Every host back to its previous release, by the path its strategy took;
   * with `to`, every host to that kept release as a deploy of it would
   * (rollback-to.ts), refused before anything changes when it cannot be.
   */
  startRollback(app: string, spec: AppSpec, createdBy: string, to?: RollbackTo): DeploymentRecord {
    this.refuseIfBusy(app);
    if (to) {
      const plan = planRollbackTo(this.deps, app, to);
      return this.launch("rollback", plan.spec, plan.release, createdBy, plan.hosts, plan.deployOperation, plan.work, plan.artifactSha256, this.leftOut(plan.spec));
    }
    const reached = this.deps.hosts.list().filter((h) => h.instances.some((i) => i.app === app) || matchesSelector(h.labels, spec.hosts));
    const selected = reached.filter((h) => h.cordon === null);
    const leftOut = reached.filter((h) => h.cordon !== null).map((h) => ({ name: h.name, why: cordonedWhy(h) }));
    if (selected.length === 0 && leftOut.length > 0) throw new ApiError(409, "ERR_ALL_CORDONED", `every host of ${app} is cordoned (${leftOut.map((h) => h.name).join(", ")}); \`cutover hosts uncordon HOST\` puts one back`);
    if (selected.length === 0) throw new ApiError(404, "ERR_NO_HOSTS", `no host runs ${app}`);
    const batches = planBatches(selected, spec.strategy.batch);
    const hosts = batches.flatMap((b, i) => b.map((h) => ({ name: h.name, batch: i + 1 })));
    const noDeploy = () => ({});
    if (spec.strategy.type === "fleet-bluegreen") {
      return this.launch("rollback", spec, "(previous)", createdBy, [], noDeploy, (run) => rollbackFleetBlueGreen(run, selected), undefined, leftOut);
    }
    if (spec.strategy.type === "rolling") {
      return this.launch("rollback", spec, "(previous)", createdBy, hosts, noDeploy, async (run) => {
        run.event(null, "rolling rollback: the same path as the deploy, batch by batch; it takes as long as the deploy did");
        await runRolling(run, batches, "rollback");
      }, undefined, leftOut);
    }
    return this.launch("rollback", spec, "(previous)", createdBy, hosts, noDeploy, async (run) => {
      for (const [index, batch] of batches.entries()) {
        run.event(null, `batch ${index + 1}/${batches.length}: ${batch.map((h) => h.name).join(", ")}`, "batch");
        for (const host of batch) run.deps.deployments.updateHost(run.id, host.name, { state: "running", startedAt: Date.now() });
        await run.deps.deployments.written();
        await run.rollBackHosts(batch.map((host) => ({ host, ok: true })));
      }
      // Batch 0: hosts left out (cordoned), recorded as skipped.
      const reachedRows = run.deps.deployments.hosts(run.id).filter((h) => h.batch > 0);
      const failed = reachedRows.filter((h) => h.state !== "rolled_back").length;
      if (failed === 0) {
        for (const h of reachedRows) run.deps.deployments.updateHost(run.id, h.hostName, { state: "succeeded" });
        run.deps.deployments.transition(run.id, "succeeded");
      } else run.deps.deployments.transition(run.id, "failed", `${failed} host(s) could not roll back`);
    }, undefined, leftOut);
  }

  /** pause / resume / promote / abort the app's running deployment. */
  control(app: string, action: RolloutControl, by: string): DeploymentRecord {
    const active = this.deps.deployments.active(app);
    const entry = active && this.running.get(active.id);
    if (!active || !entry) throw new ApiError(409, "ERR_NO_DEPLOYMENT", `${app} has no deployment in progress`);
    const { run } = entry;
    if (action === "promote") {
      if (active.strategy !== "canary" || active.state !== "paused") throw new ApiError(409, "ERR_NOT_PROMOTABLE", `only a canary waiting for promotion can be promoted (this ${active.strategy} deployment is ${active.state})`);
      run.resume(`promoted by ${by}`);
    } else if (action === "resume") {
      if (active.state !== "paused") throw new ApiError(409, "ERR_NOT_PAUSED", `the deployment is ${active.state}, not paused`);
      if (active.strategy === "canary" && !run.deps.deployments.hosts(active.id).some((h) => h.batch > 1 && h.state !== "pending")) {
        throw new ApiError(409, "ERR_NOT_PAUSED", "a canary waiting for promotion continues with `cutover promote`");
      }
      run.resume(`resumed by ${by}`);
    } else if (action === "pause") {
      if (active.state !== "running") throw new ApiError(409, "ERR_NOT_RUNNING", `the deployment is ${active.state}`);
      run.pause(`paused by ${by}; it stops before its next step`);
    } else {
      run.event(null, `abort requested by ${by}`);
      run.abort();
    }
    return this.deps.deployments.get(active.id)!;
  }

  /**
   * At start-up, what a previous coordinator process left unfinished (the
   * rule, also in the README): a blue/green deployment that was running
   * resumes — hosts whose step had finished keep their recorded outcome, a
   * host caught mid-step is asked again with the same command id (its agent
   * finished or reverted the step by itself and answers from its stored
   * result, so nothing is done twice), pending hosts carry on. Any other
   * unfinished deployment (load-balancer strategies, paused canaries, a
   * rollback in progress) is marked failed: every host keeps what its agent
   * finished, and the operator decides with `cutover status`, then deploy or
   * rollback.
   */
  resumeUnfinished(artifactSize: (sha256: string) => number): void {
    for (const deployment of this.deps.deployments.unfinished()) {
      try {
        this.resumeOne(deployment, artifactSize);
      } catch (error) {
        // One deployment that cannot be picked up (a secret the key no longer opens) must not keep the coordinator down.
        const message = error instanceof Error ? error.message : String(error);
        this.deps.log.error("cannot resume a deployment left unfinished by a previous coordinator; marking it failed", { id: deployment.id, app: deployment.app, error: message });
        this.failAfterRestart(deployment, `the coordinator restarted during it and could not resume it: ${message}; every host keeps what its agent finished: check \`cutover status\`, then deploy or rollback`);
      }
    }
  }

  /** resumeUnfinished, for one deployment: resumed, rolled back, or marked failed by the rule above. */
  private resumeOne(deployment: DeploymentRecord, artifactSize: (sha256: string) => number): void {
    const spec = this.deps.deployments.spec(deployment.id) as AppSpec;
    if (deployment.kind === "deploy" && deployment.strategy === "bluegreen" && deployment.state === "running") {
      const byName = new Map(this.deps.hosts.list().map((h) => [h.name, h]));
      const rows = this.deps.deployments.hosts(deployment.id);
      const batches: HostRecord[][] = [];
      for (const row of rows) {
        const host = byName.get(row.hostName);
        if (!host || row.batch === 0) continue;
        (batches[row.batch - 1] ??= []).push(host);
      }
      const definition = appDefinition(spec);
      const artifact = deployment.artifactSha256 ? { sha256: deployment.artifactSha256, sizeBytes: artifactSize(deployment.artifactSha256) } : undefined;
      const secrets = this.deps.secrets.values(spec.app, secretNamesOf(spec));
      const run = new RolloutRun(this.deps, deployment, spec, (_host, inPlace) => ({ deploy: { app: definition, release: deployment.release, artifact, inPlace, secrets } }));
      run.event(null, "the coordinator restarted: resuming (finished hosts keep their outcome; a host caught mid-step is asked again with the same command id)");
      this.deps.log.warn("resuming a deployment left running by a previous coordinator", { id: deployment.id, app: deployment.app });
      const order = batches.filter(Boolean);
      // A pre_deploy hook that passed before the restart is not run again (hooks.ts reads its event).
      this.track(run, afterPreDeploy(order.flat(), (r) => runBlueGreen(r, order))(run));
      return;
    }
    if (deployment.kind === "deploy" && spec.lb) {
      this.deps.log.warn("rolling back a load-balancer deployment left unfinished by a previous coordinator", { id: deployment.id, app: deployment.app, strategy: deployment.strategy });
      const definition = appDefinition(spec);
      const secrets = this.deps.secrets.values(spec.app, secretNamesOf(spec));
      const run = new RolloutRun(this.deps, deployment, spec, (_host, inPlace) => ({ deploy: { app: definition, release: deployment.release, inPlace, secrets } }));
      this.track(run, rollBackAfterRestart(run));
      return;
    }
    this.deps.log.warn("marking a deployment left unfinished by a previous coordinator failed", { id: deployment.id, app: deployment.app, strategy: deployment.strategy, state: deployment.state });
    this.failAfterRestart(deployment, "the coordinator restarted during it; every host keeps what its agent finished: check `cutover status`, then deploy or rollback");
  }

  /** Marks a deployment a restart left unfinished failed, with `why`: hosts not done are skipped (pending) or failed (mid-step). */
  private failAfterRestart(deployment: DeploymentRecord, why: string): void {
    if (deployment.state === "paused") this.deps.deployments.transition(deployment.id, "rolling_back", why);
    this.deps.deployments.transition(deployment.id, "failed", why);
    for (const h of this.deps.deployments.hosts(deployment.id).filter((h) => h.state === "pending" || h.state === "running")) {
      this.deps.deployments.updateHost(deployment.id, h.hostName, { state: h.state === "pending" ? "skipped" : "failed", error: "coordinator restarted" });
    }
  }

  /**
   * Runs `work` (`cutover apps remove`) unless the app is locked or a deployment of it
   * runs; deploys and rollbacks of it are refused until it is done.
   */
  async whileRemoving<T>(app: string, work: () => Promise<T>): Promise<T> {
    this.refuseIfBusy(app);
    this.removing.add(app);
    try {
      return await work();
    } finally {
      this.removing.delete(app);
    }
  }

  /** Resolves when the deployment's background work has finished (tests, shutdown). */
  async settled(id: string): Promise<void> {
    await this.running.get(id)?.done;
  }

  /** A deploy or rollback waits for no one: a locked app, or one with a deployment running, is refused. */
  private refuseIfBusy(app: string): void {
    const refusal = this.busyRefusal(app);
    if (refusal) throw refusal;
  }

  busyRefusal(app: string): ApiError | undefined {
    if (this.removing.has(app)) return new ApiError(409, "ERR_APP_REMOVING", `${app} is being removed (\`cutover apps remove\`); nothing was deployed`);
    const lock = this.locks.get(app);
    if (lock) return new ApiError(423, "ERR_APP_LOCKED", `${describeLock(lock)}; nothing was deployed (\`cutover lock release ${app}\` frees it; \`deploy --lock-wait\` waits for that)`);
    const active = this.deps.deployments.active(app);
    if (active) return new ApiError(409, "ERR_DEPLOYMENT_IN_PROGRESS", `${app} has a ${active.kind} in progress (${active.id}); wait for it, or \`cutover abort ${app}\``);
    return undefined;
  }

  private launch(
    kind: DeploymentKind,
    spec: AppSpec,
    release: string,
    createdBy: string,
    hosts: { name: string; batch: number }[],
    deployOperation: ConstructorParameters<typeof RolloutRun>[3],
    work: (run: RolloutRun) => Promise<void>,
    artifactSha256?: string,
    leftOut: LeftOutHost[] = [],
  ): DeploymentRecord {
    // Hosts left out are in the record too (batch 0, skipped, why), so the deploy's output names them.
    const rows = [...hosts, ...leftOut.map((h) => ({ name: h.name, batch: 0 }))];
    const deployment = this.deps.deployments.create({ app: spec.app, kind, release, strategy: spec.strategy.type, spec, artifactSha256, createdBy, hosts: rows });
    for (const h of leftOut) this.deps.deployments.updateHost(deployment.id, h.name, { state: "skipped", error: h.why });
    const run = new RolloutRun(this.deps, deployment, spec, deployOperation);
    run.event(null, `${kind === "deploy" ? `deploy ${release}` : "rollback"} of ${spec.app} (${spec.strategy.type}) to ${hosts.length} host(s)`);
    for (const h of leftOut) run.event(h.name, `left out: ${h.why}`);
    this.track(run, work(run));
    return deployment;
  }

  private track(run: RolloutRun, work: Promise<void>): void {
    const deployment = run.deployment;
    const done = work
      .catch((error: Error) => {
        this.deps.log.error("deployment crashed", { id: deployment.id, error: error.stack ?? error.message });
        const state = this.deps.deployments.get(deployment.id)?.state;
        if (state === "running" || state === "paused" || state === "rolling_back") this.deps.deployments.transition(deployment.id, "failed", `internal error: ${error.message}`);
      })
      .finally(() => this.running.delete(deployment.id));
    this.running.set(deployment.id, { run, done });
  }
}
