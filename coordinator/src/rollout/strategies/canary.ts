import { resolveCount } from "@cutover/spec";
import type { LbState } from "../../store/apps.js";
import type { HostRecord } from "../../store/hosts.js";
import { allUp, withCanary, withoutCanary, withState } from "../lb-plan.js";
import { planBatches } from "../plan.js";
import type { HostResult, RolloutRun } from "../run.js";
import { finish, halt, haltReason, tooMany } from "./common.js";
import { runRolling } from "./rolling.js";

/** How often the analysis window looks at the canary hosts' reports. */
const ANALYSIS_TICK_MS = 1000;

/**
 * The optional analysis window: for `windowMs` the canary hosts must stay
 * online with their live instance healthy and not restarted (same pid).
 * Returns why it failed, or undefined when it passed. (Request error rates
 * are not measured yet: the load balancer does not count statuses.)
 */
async function analyse(run: RolloutRun, canaries: HostRecord[], windowMs: number): Promise<string | undefined> {
  const app = run.spec.app;
  // The first report of the new release's live instance sets the pid to watch (reports may lag the deploy).
  const pids = new Map<string, number>();
  run.event(null, `canary analysis: watching ${canaries.map((h) => h.name).join(", ")} for ${Math.round(windowMs / 1000)}s`);
  const until = Date.now() + windowMs;
  while (Date.now() < until) {
    await run.pauseFor(Math.min(ANALYSIS_TICK_MS, Math.max(0, until - Date.now())));
    for (const host of canaries) {
      const current = run.deps.hosts.byName(host.name);
      if (!current || !run.deps.fleet.reachable(current.id)) return `${host.name} became unreachable`;
      const live = current.instances.find((i) => i.app === app && i.live);
      if (live?.release !== run.deployment.release && !pids.has(host.name)) continue;
      if (!live || live.state !== "healthy") return `${host.name}'s instance is ${live?.state ?? "gone"}`;
      const seen = pids.get(host.name) ?? live.pid;
      if (!pids.has(host.name)) run.event(host.name, `canary analysis: ${live.release} healthy as pid ${live.pid}`);
      pids.set(host.name, seen);
      if (live.pid !== seen) return `${host.name}'s instance restarted (pid ${seen} → ${live.pid})`;
    }
  }
  return undefined;
}

/**
 * Canary (docs/architecture.md, "Fleet strategies"): deploy to `canary.hosts`, send them `canary.weight` % of
 * new users (sticky by cookie, or pinned by header/cookie), then pause until
 * `cutover promote` (continue to the rest with bluegreen or rolling) or
 * `cutover abort` (canaries rolled back, their weight removed).
 */
export async function runCanary(run: RolloutRun, hosts: HostRecord[]): Promise<void> {
  const spec = run.spec;
  if (spec.strategy.type !== "canary") throw new Error("not a canary spec");
  const canaryCount = Math.min(hosts.length, resolveCount(spec.strategy.canary.hosts, hosts.length));
  const canaries = hosts.slice(0, canaryCount);
  const rest = hosts.slice(canaryCount);
  const canaryNames = canaries.map((h) => h.name);
  const base: LbState = allUp(spec, hosts, run.deps.apps.lbState(spec.app));
  const deployed: HostResult[] = [];
  const undoCanary = async () => {
    const drained = withState(withoutCanary(base), canaryNames, "drain");
    await run.applyLb(drained, `canary weight removed; draining ${canaryNames.join(", ")}`);
    await run.waitDrained(canaryNames);
    await run.rollBackHosts(deployed.filter((r) => r.ok));
    await run.applyLb(withoutCanary(base), "every host on the previous release, no canary");
  };
  try {
    await run.applyLb(withoutCanary(base), `every host of ${spec.app} up`);
    run.event(null, `canary: ${canaryNames.join(", ")}`, "batch");
    const results = await Promise.all(canaries.map((host) => run.deployHost(host)));
    deployed.push(...results);
    const failures = results.filter((r) => !r.ok).length;
    const why = tooMany(run, failures);
    if (why) return halt(run, why, rest, undoCanary);
    await run.applyLb(withCanary(base, spec, canaryNames), `canary ${canaryNames.join(", ")} gets ${spec.strategy.canary.weightPercent}% of new users`);
    const analysis = spec.strategy.canary.analysis;
    if (analysis) {
      const verdict = await analyse(run, canaries, analysis.windowMs);
      if (verdict) return halt(run, `canary analysis failed: ${verdict}`, rest, undoCanary);
      run.event(null, `canary analysis passed after ${Math.round(analysis.windowMs / 1000)}s: promoting`);
    } else {
      run.pause("canary is live: `cutover promote` continues to the rest of the fleet, `cutover abort` rolls the canary back");
      await run.checkpoint();
    }
  } catch (error) {
    return halt(run, haltReason(error), rest, undoCanary);
  }
  run.event(null, `promoted: continuing to ${rest.length} host(s) with ${spec.strategy.canary.then}`);
  const batches = planBatches(rest, spec.strategy.batch);
  if (spec.strategy.canary.then === "rolling") {
    // The rolling rollout applies every host up with no canary split as it starts.
    await runRolling(run, batches);
    return;
  }
  let failures = 0;
  for (const [index, batch] of batches.entries()) {
    try {
      await run.checkpoint();
    } catch (error) {
      return halt(run, haltReason(error), batches.slice(index).flat(), undoCanary);
    }
    run.event(null, `batch ${index + 1}/${batches.length}: ${batch.map((h) => h.name).join(", ")}`, "batch");
    const results = await Promise.all(batch.map((host) => run.deployHost(host)));
    deployed.push(...results);
    failures += results.filter((r) => !r.ok).length;
    const why = tooMany(run, failures);
    if (why) return halt(run, why, batches.slice(index + 1).flat(), undoCanary);
  }
  await run.applyLb(withoutCanary(base), "promoted everywhere: canary split removed");
  finish(run, failures);
}
