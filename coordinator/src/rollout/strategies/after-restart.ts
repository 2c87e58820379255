import type { HostRecord } from "../../store/hosts.js";
import { allUp, shifted, withoutCanary, withState } from "../lb-plan.js";
import type { HostResult, RolloutRun } from "../run.js";
import { halt } from "./common.js";
import { fleetGroups } from "./fleet-bluegreen.js";

/**
 * The rule for a load-balancer deployment (rolling, canary, fleet-bluegreen)
 * that a previous coordinator left unfinished: roll it back. A host caught
 * mid-step is asked for its outcome (same command id); every host that took
 * the new release goes back to its previous one (rolling: drained, in place);
 * the upstream goes back to every host up with no canary split (fleet
 * blue/green: all traffic to the group that was live before).
 */
export async function rollBackAfterRestart(run: RolloutRun): Promise<void> {
  const spec = run.spec;
  const byName = new Map(run.deps.hosts.list().map((h) => [h.name, h]));
  const rows = run.deps.deployments.hosts(run.id);
  const results: HostResult[] = [];
  for (const row of rows) {
    const host = byName.get(row.hostName);
    if (!host) continue;
    if (row.state === "running") results.push(await run.deployHost(host, spec.strategy.type === "rolling"));
    else if (row.state === "succeeded") results.push({ host, ok: true, outcome: { previousRelease: row.previousRelease ?? "", release: row.release ?? "" } });
  }
  const pending = rows.filter((r) => r.state === "pending").map((r) => byName.get(r.hostName)).filter((h): h is HostRecord => h !== undefined);
  const selected = [...byName.values()].filter((h) => rows.some((r) => r.hostName === h.name) || Object.entries(spec.hosts).every(([k, v]) => h.labels[k] === v));
  await halt(run, "the coordinator restarted during this deployment: rolling it back (the rule for load-balancer strategies)", pending, async () => {
    const switched = results.filter((r) => r.ok);
    if (spec.strategy.type === "fleet-bluegreen") {
      const lb = run.deps.apps.lbState(spec.app);
      const { groupOf, live } = fleetGroups(run, selected);
      if (lb) await run.applyLb({ ...shifted(lb, groupOf, live, 100), liveGroup: live }, `all traffic back to group ${live}`);
      return;
    }
    let lb = withoutCanary(allUp(spec, selected, run.deps.apps.lbState(spec.app)));
    const names = switched.map((r) => r.host.name);
    if (names.length > 0) {
      lb = withState(lb, names, "drain");
      await run.applyLb(lb, `drain ${names.join(", ")} to roll them back`);
      await run.waitDrained(names);
      await run.rollBackHosts(switched, spec.strategy.type === "rolling");
    }
    await run.applyLb(withState(lb, names, "up"), "every host up on its previous release, no canary split");
  });
}
