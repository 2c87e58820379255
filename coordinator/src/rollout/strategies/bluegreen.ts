import type { HostRecord } from "../../store/hosts.js";
import type { HostResult, RolloutRun } from "../run.js";
import { finish, halt, haltReason, tooMany, verifyBatch } from "./common.js";

/** Per-host blue/green, `batch` hosts at a time (docs/architecture.md, "Fleet strategies"). */
export async function runBlueGreen(run: RolloutRun, batches: HostRecord[][], options: { finishWith?: () => Promise<void> } = {}): Promise<void> {
  const done: HostResult[] = [];
  let failures = 0;
  // Resumed after a coordinator restart: hosts whose step finished keep their recorded outcome (read once).
  const recorded = new Map(run.deps.deployments.hosts(run.id).map((h) => [h.hostName, h]));
  for (const [index, batch] of batches.entries()) {
    const remaining = batches.slice(index).flat();
    try {
      await run.checkpoint();
    } catch (error) {
      return halt(run, haltReason(error), remaining, () => run.rollBackHosts(done.filter((r) => r.ok)));
    }
    const finished = (host: HostRecord) => ["succeeded", "failed", "rolled_back", "skipped"].includes(recorded.get(host.name)?.state ?? "");
    if (batch.every(finished)) {
      for (const host of batch) {
        const r = recorded.get(host.name)!;
        done.push({ host, ok: r.state === "succeeded", outcome: { previousRelease: r.previousRelease ?? "", release: r.release ?? "" } });
        if (r.state === "failed") failures++;
      }
      continue;
    }
    run.event(null, `batch ${index + 1}/${batches.length}: ${batch.map((h) => h.name).join(", ")}`, "batch");
    const results = await Promise.all(
      batch.map(async (host): Promise<HostResult> => {
        const r = recorded.get(host.name);
        if (r && finished(host)) return { host, ok: r.state === "succeeded", outcome: { previousRelease: r.previousRelease ?? "", release: r.release ?? "" } };
        return run.deployHost(host);
      }),
    );
    done.push(...results);
    failures += results.filter((r) => !r.ok).length;
    const why = tooMany(run, failures) ?? (await verifyBatch(run, results));
    if (why) return halt(run, why, batches.slice(index + 1).flat(), () => run.rollBackHosts(done.filter((r) => r.ok)));
  }
  if (options.finishWith) {
    try {
      await options.finishWith();
    } catch (error) {
      return halt(run, haltReason(error), [], () => run.rollBackHosts(done.filter((r) => r.ok)));
    }
  }
  finish(run, failures);
}
