import type { HostRecord } from "../../store/hosts.js";
import { analysisFailure } from "../analysis/analyse.js";
import { RolloutStopped, type HostResult, type RolloutRun } from "../run.js";

/** Ends a rollout whose every batch ran: succeeded only when no host failed. */
export function finish(run: RolloutRun, failures: number): void {
  if (failures === 0) run.deps.deployments.transition(run.id, "succeeded");
  else run.deps.deployments.transition(run.id, "failed", `${failures} host(s) failed (within max_failures=${run.spec.strategy.maxFailures})`);
}

/** Marks hosts that never got their turn. */
export function skip(run: RolloutRun, hosts: HostRecord[]): void {
  for (const host of hosts) {
    const current = run.deps.deployments.host(run.id, host.name);
    if (current?.state === "pending") run.deps.deployments.updateHost(run.id, host.name, { state: "skipped" });
  }
}

/** Halts: later hosts are skipped, `undo` puts things back, the deployment ends rolled_back. */
export async function halt(run: RolloutRun, why: string, remaining: HostRecord[], undo: () => Promise<void>): Promise<void> {
  if (run.state !== "rolling_back") run.deps.deployments.transition(run.id, "rolling_back", why);
  skip(run, remaining);
  await undo();
  run.deps.deployments.transition(run.id, "rolled_back");
}

/** The reason a RolloutStopped or a failure count gives for halting. */
export function haltReason(error: unknown): string {
  if (error instanceof RolloutStopped) return error.message;
  return `failed: ${(error as Error).message}`;
}

export function tooMany(run: RolloutRun, failures: number): string | undefined {
  const max = run.spec.strategy.maxFailures;
  return failures > max ? `${failures} host(s) failed, more than max_failures=${max}` : undefined;
}

export function succeededOf(results: HostResult[]): HostResult[] {
  return results.filter((r) => r.ok);
}

/**
 * `strategy.verify` after a batch switched: the analysis judges the batch's
 * hosts that succeeded; why it failed, or undefined (passed, none to judge,
 * or inconclusive and continued by the operator); an abort or the progress
 * deadline during it is a reason too.
 */
export async function verifyBatch(run: RolloutRun, results: HostResult[]): Promise<string | undefined> {
  const strategy = run.spec.strategy;
  const verify = strategy.type === "bluegreen" || strategy.type === "rolling" ? strategy.verify : undefined;
  const hosts = results.filter((r) => r.ok).map((r) => r.host);
  if (!verify || hosts.length === 0) return undefined;
  try {
    const failed = await analysisFailure(run, hosts, verify, "verify", "resume");
    return failed && `verify failed: ${failed}`;
  } catch (error) {
    return haltReason(error);
  }
}
