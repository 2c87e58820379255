import type { LbState } from "../../store/apps.js";
import type { HostRecord } from "../../store/hosts.js";
import { analysisFailure } from "../analysis/analyse.js";
import { allUp, shifted } from "../lb-plan.js";
import { planBatches } from "../plan.js";
import type { HostResult, RolloutRun } from "../run.js";
import { finish, halt, haltReason, tooMany } from "./common.js";

/** Which group each host is in, and which group serves now. */
export function fleetGroups(run: RolloutRun, hosts: HostRecord[]): { groupOf: (host: string) => string | undefined; live: string; idle: string; idleHosts: HostRecord[] } {
  if (run.spec.strategy.type !== "fleet-bluegreen") throw new Error("not a fleet-bluegreen spec");
  const { label, blue, green } = run.spec.strategy.groups;
  const byName = new Map(hosts.map((h) => [h.name, h.labels[label]]));
  const live = run.deps.apps.lbState(run.spec.app)?.liveGroup ?? green;
  const idle = live === blue ? green : blue;
  return { groupOf: (host) => byName.get(host), live, idle, idleHosts: hosts.filter((h) => h.labels[label] === idle) };
}

/**
 * Fleet blue/green (docs/architecture.md, "Fleet strategies"): deploy the idle group, health gate all of it,
 * shift the load balancer's weights in steps (e.g. 10 → 50 → 100) with a
 * pause between, and keep the old group untouched for a one-switch rollback.
 */
export async function runFleetBlueGreen(run: RolloutRun, hosts: HostRecord[]): Promise<void> {
  const spec = run.spec;
  if (spec.strategy.type !== "fleet-bluegreen") throw new Error("not a fleet-bluegreen spec");
  const { groupOf, live, idle, idleHosts } = fleetGroups(run, hosts);
  const previous = run.deps.apps.lbState(spec.app);
  const firstTime = !previous?.liveGroup;
  let lb: LbState = previous?.liveGroup ? { ...previous, backends: allUp(spec, hosts).backends.map((b) => previous.backends.find((p) => p.host === b.host) ?? { ...b, state: "down" as const }) } : allUp(spec, hosts);
  const backToLive = async () => {
    if (!firstTime) await run.applyLb({ ...shifted(lb, groupOf, live, 100), liveGroup: live }, `all traffic back to group ${live}`);
  };
  run.event(null, `group ${live} serves; deploying group ${idle}: ${idleHosts.map((h) => h.name).join(", ")}`, "batch");
  const deployed: HostResult[] = [];
  let failures = 0;
  const batches = planBatches(idleHosts, spec.strategy.batch);
  for (const [index, batch] of batches.entries()) {
    try {
      await run.checkpoint();
    } catch (error) {
      return halt(run, haltReason(error), batches.slice(index).flat(), async () => {});
    }
    const results = await Promise.all(batch.map((host) => run.deployHost(host)));
    deployed.push(...results);
    failures += results.filter((r) => !r.ok).length;
    const why = tooMany(run, failures);
    // The idle group never took traffic: nothing at the load balancer to undo.
    if (why) return halt(run, why, batches.slice(index + 1).flat(), async () => {});
  }
  const analysis = spec.strategy.analysis;
  const judged = deployed.filter((r) => r.ok).map((r) => r.host);
  try {
    for (const percent of spec.strategy.steps) {
      await run.checkpoint();
      lb = shifted(lb, groupOf, idle, firstTime ? 100 : percent);
      await run.applyLb(lb, `${firstTime ? 100 : percent}% to group ${idle}`);
      if (firstTime) break;
      // With an analysis, each step is judged on the new group's traffic; without, it is watched for step_pause.
      const failed = analysis ? await analysisFailure(run, judged, analysis, `analysis at ${percent}%`, "resume") : undefined;
      if (failed) return halt(run, `analysis at ${percent}% failed: ${failed}`, [], backToLive);
      if (!analysis && percent < 100) await run.pauseFor(spec.strategy.stepPauseMs);
    }
  } catch (error) {
    return halt(run, haltReason(error), [], backToLive);
  }
  await run.applyLb({ ...lb, liveGroup: idle }, `group ${idle} is live; group ${live} kept for rollback`);
  finish(run, failures);
}

/** `cutover rollback` of a fleet-bluegreen app: one load-balancer switch back to the other group. */
export async function rollbackFleetBlueGreen(run: RolloutRun, hosts: HostRecord[]): Promise<void> {
  const { groupOf, live, idle } = fleetGroups(run, hosts);
  const lb = run.deps.apps.lbState(run.spec.app);
  if (!lb) throw new Error("no load-balancer state recorded for this app");
  await run.applyLb({ ...shifted(lb, groupOf, idle, 100), liveGroup: idle }, `rollback: all traffic to group ${idle} (was ${live})`);
  finish(run, 0);
}
