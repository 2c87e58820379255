import { REPORTS_KEPT_RELEASES } from "@cutover/protocol";
import type { AppSpec } from "@cutover/spec";
import { ApiError } from "../api/errors.js";
import type { CommandOperation } from "../fleet/fleet.js";
import type { HostRecord } from "../store/hosts.js";
import { appDefinition, matchesSelector, planBatches } from "./plan.js";
import { checkHost } from "./preflight.js";
import { checkRollbackHosts, findRollbackTarget, type HostReleases } from "./rollback-target.js";
import type { RolloutDeps, RolloutRun } from "./run.js";
import { secretValues, unsetSecretsRefusal, type SecretRolloutDeps } from "./secrets.js";
import { runBlueGreen } from "./strategies/bluegreen.js";
import { runRolling } from "./strategies/rolling.js";

/** Every deployment of an app, however many (SQLite's LIMIT takes any integer). */
const EVERY_DEPLOYMENT = Number.MAX_SAFE_INTEGER;

/** `cutover rollback APP --to RELEASE`: the release, and the coordinator's artifact of a sha256 if it still has it. */
export interface RollbackTo {
  release: string;
  artifact(sha256: string): { size: number } | undefined;
}

/** A rollback to a kept release, checked and ready to launch as a deployment of kind "rollback". */
export interface RollbackToPlan {
  /** The spec the release went live with: its strategy, hosts and app definition. */
  spec: AppSpec;
  release: string;
  artifactSha256?: string;
  hosts: { name: string; batch: number }[];
  deployOperation: (host: HostRecord, inPlace: boolean) => CommandOperation;
  work: (run: RolloutRun) => Promise<void>;
}

/** The hosts a rollback of `app` reaches under `spec`: those running it, and those the spec selects. */
export function rollbackHosts(deps: Pick<RolloutDeps, "hosts">, app: string, spec: AppSpec): HostRecord[] {
  return deps.hosts.list().filter((h) => h.instances.some((i) => i.app === app) || matchesSelector(h.labels, spec.hosts));
}

/** What a host says it keeps of `app` (null when its agent does not report it, or has not since this coordinator started) and serves. */
export function hostReleases(deps: Pick<RolloutDeps, "fleet">, host: HostRecord, app: string): HostReleases {
  const reported = host.capabilities.includes(REPORTS_KEPT_RELEASES) ? deps.fleet.kept.of(host.name, app) : undefined;
  return { name: host.name, live: host.instances.find((i) => i.app === app && i.live)?.release || null, kept: reported?.releases ?? null };
}

/**
 * Plans a deploy of a release that went live before, with the spec and the
 * artifact it went live with, by that spec's per-host path (blue/green:
 * start on the idle color, gate, switch, drain; rolling: in place behind the
 * load balancer; a canary's hosts swap per host, as a plain rollback does).
 * Everything that would refuse it is checked here, before anything is saved
 * or sent (rollback-target.ts; then the resource preflight, as a deploy's).
 */
export function planRollbackTo(deps: SecretRolloutDeps, app: string, to: RollbackTo): RollbackToPlan {
  const deploys = deps.deployments.history(app, EVERY_DEPLOYMENT).filter((d) => d.kind === "deploy");
  const target = findRollbackTarget({
    app,
    release: to.release,
    deploys,
    wentLive: (id) => deps.deployments.hosts(id).some((h) => h.state === "succeeded"),
  });
  const spec = deps.deployments.spec(target.deploymentId) as AppSpec;
  if (spec.strategy.type === "fleet-bluegreen") {
    throw new ApiError(
      400,
      "ERR_ROLLBACK_TO_UNSUPPORTED",
      `${target.release} went live by fleet-bluegreen, whose releases live on host groups: \`cutover rollback ${app}\` switches the load balancer back to the previous group; nothing was changed`,
    );
  }
  // Cordoned hosts are left out, as a deploy leaves them (`cutover hosts cordon`).
  const selected = rollbackHosts(deps, app, spec).filter((h) => h.cordon === null);
  if (selected.length === 0) throw new ApiError(404, "ERR_NO_HOSTS", `no host runs ${app} or matches hosts: ${JSON.stringify(spec.hosts)}`);
  const artifact = target.artifactSha256 ? to.artifact(target.artifactSha256) : undefined;
  const { fetching } = checkRollbackHosts({ app, target, hosts: selected.map((h) => hostReleases(deps, h, app)), artifactAvailable: artifact !== undefined });
  const failing = selected
    .map((host) => checkHost(spec, host, deps.fleet.liveness(host.id), fetching.includes(host.name) ? (artifact?.size ?? 0) : 0))
    .filter((c) => !c.ok);
  if (failing.length > 0) {
    const lines = failing.map((c) => `${c.name}: ${c.checks.filter((k) => !k.ok).map((k) => k.reason).join("; ")}`);
    throw new ApiError(412, "ERR_PREFLIGHT_FAILED", `the resource preflight failed on ${failing.length} host(s); nothing was changed:\n  ${lines.join("\n  ")}`);
  }

  const unset = unsetSecretsRefusal(deps, spec, "nothing was changed");
  if (unset) throw unset;
  const definition = appDefinition(spec);
  const secrets = secretValues(deps, spec);
  const sha256 = target.artifactSha256 ?? undefined;
  // Hosts that keep the tree reuse it (same sha256); the others download it, which the deployment's artifact allows.
  const wire = sha256 ? { sha256, sizeBytes: artifact?.size ?? 0 } : undefined;
  const batches = planBatches(selected, spec.strategy.batch);
  return {
    spec,
    release: target.release,
    artifactSha256: sha256,
    hosts: batches.flatMap((b, i) => b.map((h) => ({ name: h.name, batch: i + 1 }))),
    deployOperation: (_host, inPlace) => ({ deploy: { app: definition, release: target.release, artifact: wire, inPlace, secrets } }),
    work: async (run) => {
      run.event(null, `rollback to ${target.release} with the spec it went live with (deployment ${target.deploymentId}), as a deploy of it`);
      if (fetching.length > 0) run.event(null, `${fetching.join(", ")} ${fetching.length === 1 ? "does" : "do"} not keep ${target.release}: the artifact is fetched from the coordinator`);
      await (spec.strategy.type === "rolling" ? runRolling(run, batches) : runBlueGreen(run, batches));
    },
  };
}
