import { resolveCount } from "@cutover/spec";
import type { LbState } from "../../store/apps.js";
import type { HostRecord } from "../../store/hosts.js";
import { analysisFailure } from "../analysis/analyse.js";
import { allUp, withCanary, withoutCanary, withState } from "../lb-plan.js";
import { planBatches } from "../plan.js";
import type { HostResult, RolloutRun } from "../run.js";
import { finish, halt, haltReason, tooMany } from "./common.js";
import { runRolling } from "./rolling.js";

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
      const failed = await analysisFailure(run, canaries, analysis, "canary analysis", "promote");
      if (failed) return halt(run, `canary analysis failed: ${failed}`, rest, undoCanary);
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
