import type { LbState } from "../../store/apps.js";
import type { HostRecord } from "../../store/hosts.js";
import { allUp, withState } from "../lb-plan.js";
import type { HostResult, RolloutRun } from "../run.js";
import { finish, halt, haltReason, tooMany, verifyBatch } from "./common.js";

/**
 * In place, for hosts without room for a second copy (docs/architecture.md, "Fleet strategies"): per
 * batch, drain the hosts at the front load balancer, wait for their in-flight
 * requests, replace the app on its own port, health gate, put them back.
 */
export async function runRolling(run: RolloutRun, batches: HostRecord[][], mode: "deploy" | "rollback" = "deploy"): Promise<void> {
  const all = batches.flat();
  let lb: LbState = allUp(run.spec, all, run.deps.apps.lbState(run.spec.app));
  const done: HostResult[] = [];
  let failures = 0;
  const undo = async () => {
    // The same path backwards, batch by batch: drain, previous release in place, back up.
    for (const result of done.filter((r) => r.ok)) {
      lb = withState(lb, [result.host.name], "drain");
      await run.applyLb(lb, `drain ${result.host.name} to roll it back`);
      await run.waitDrained([result.host.name]);
      await run.rollBackHosts([result], true);
      lb = withState(lb, [result.host.name], "up");
      await run.applyLb(lb, `${result.host.name} back in`);
    }
  };
  try {
    await run.applyLb(lb, `every host of ${run.spec.app} up`);
  } catch (error) {
    return halt(run, haltReason(error), all, async () => {});
  }
  for (const [index, batch] of batches.entries()) {
    const names = batch.map((h) => h.name);
    try {
      await run.checkpoint();
      run.event(null, `batch ${index + 1}/${batches.length}: ${names.join(", ")}`, "batch");
      lb = withState(lb, names, "drain");
      await run.applyLb(lb, `drain ${names.join(", ")}`);
      await run.waitDrained(names);
    } catch (error) {
      return halt(run, haltReason(error), batches.slice(index).flat(), undo);
    }
    const results =
      mode === "deploy"
        ? await Promise.all(batch.map((host) => run.deployHost(host, true)))
        : await Promise.all(batch.map(async (host) => (await run.rollBackHosts([{ host, ok: true }], true), { host, ok: true } as HostResult)));
    done.push(...results);
    failures += results.filter((r) => !r.ok).length;
    try {
      // A host that failed started its previous release again: it is healthy and goes back in too.
      lb = withState(lb, names, "up");
      await run.applyLb(lb, `${names.join(", ")} back in`);
    } catch (error) {
      return halt(run, haltReason(error), batches.slice(index + 1).flat(), undo);
    }
    const why = tooMany(run, failures) ?? (mode === "deploy" ? await verifyBatch(run, results) : undefined);
    if (why) return halt(run, why, batches.slice(index + 1).flat(), undo);
  }
  finish(run, failures);
}
