import type { AnalysisSpec } from "@cutover/spec";
import { countedBetween, type Reading } from "../../fleet/request-metrics.js";
import type { HostRecord } from "../../store/hosts.js";
import type { RolloutRun } from "../run.js";
import { describeMeasurement, judge, type Measurement, type QueryOutcome, type Verdict } from "./measurement.js";
import { queryPrometheus } from "./prometheus.js";

/** How often, inside a measurement interval, the judged hosts' liveness and instances are looked at. */
const HEALTH_TICK_MS = 1000;

export interface AnalysisResult {
  verdict: Verdict;
  /** Why it failed or was inconclusive; for a pass, a summary. */
  why: string;
  measurements: Measurement[];
}

/**
 * Judges the new release on `hosts` (docs/architecture.md, "Rollout
 * analysis"): `count` measurements, one every `interval`. Each reads what the
 * hosts' users got in that interval — at the front load balancer when the
 * spec has one (the backends' counters), else at the hosts' own proxies (the
 * live color's counters) — and the Prometheus query, and is judged against
 * the checks. Meanwhile the hosts must stay reachable with their live
 * instance healthy and not restarted. More failed measurements than
 * `failure_limit` fail it at once; otherwise any inconclusive one makes it
 * inconclusive. `label` prefixes its events ("canary analysis").
 */
export async function analyse(run: RolloutRun, hosts: HostRecord[], spec: AnalysisSpec, label = "analysis"): Promise<AnalysisResult> {
  const names = hosts.map((h) => h.name).join(", ");
  run.event(null, `${label}: ${spec.count} measurement(s) of ${names}, one every ${spec.intervalMs / 1000}s (failure_limit ${spec.failureLimit})`, "analysis");
  const watch = new HealthWatch(run, hosts, label);
  const measurements: Measurement[] = [];
  let failures = 0;
  let before = readRequests(run, hosts);
  for (let index = 1; index <= spec.count; index++) {
    const unhealthy = await watch.over(spec.intervalMs);
    if (unhealthy) return { verdict: "failed", why: unhealthy, measurements };
    const after = readRequests(run, hosts);
    const query: QueryOutcome | undefined = spec.prometheus
      ? await queryPrometheus(spec.prometheus).then(
          (value) => ({ value }),
          (error: Error) => ({ error: error.message }),
        )
      : undefined;
    const measurement = judge(index, countedBetween(before, after), spec, query);
    before = after;
    measurements.push(measurement);
    run.event(null, `${label} ${describeMeasurement(measurement, spec.count)}`, "analysis");
    if (measurement.verdict === "failed" && ++failures > spec.failureLimit) {
      return { verdict: "failed", why: `measurement ${index}/${spec.count}: ${measurement.why}`, measurements };
    }
  }
  const inconclusive = measurements.filter((m) => m.verdict === "inconclusive");
  if (inconclusive.length > 0) {
    return { verdict: "inconclusive", why: `${inconclusive.length} of ${spec.count} measurement(s) inconclusive (last: ${inconclusive.at(-1)?.why})`, measurements };
  }
  return { verdict: "passed", why: `${spec.count} measurement(s), ${failures} failed (failure_limit ${spec.failureLimit})`, measurements };
}

/** The request counters that judge the new release on `hosts`, as the fleet has them now. */
function readRequests(run: RolloutRun, hosts: HostRecord[]): Reading {
  const app = run.spec.app;
  const names = new Set(hosts.map((h) => h.name));
  if (run.spec.lb) return run.deps.fleet.requests.read((c) => c.site === "lb" && c.app === app && names.has(c.group));
  const liveColor = new Map(hosts.map((h) => [h.name, run.deps.hosts.byName(h.name)?.instances.find((i) => i.app === app && i.live)?.color]));
  return run.deps.fleet.requests.read((c) => c.site === "app" && c.app === app && names.has(c.host) && c.group === liveColor.get(c.host));
}

/** The judged hosts stay reachable, with the new release's live instance healthy and on the pid it was first seen with. */
class HealthWatch {
  private readonly pids = new Map<string, number>();

  constructor(
    private readonly run: RolloutRun,
    private readonly hosts: HostRecord[],
    private readonly label: string,
  ) {}

  /** Watches for `ms`; why a host is not fit, or undefined. Throws RolloutStopped when aborted. */
  async over(ms: number): Promise<string | undefined> {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      await this.run.pauseFor(Math.min(HEALTH_TICK_MS, Math.max(0, until - Date.now())));
      const why = this.check();
      if (why) return why;
    }
    return undefined;
  }

  private check(): string | undefined {
    const { run } = this;
    for (const host of this.hosts) {
      const current = run.deps.hosts.byName(host.name);
      if (!current || !run.deps.fleet.reachable(current.id)) return `${host.name} became unreachable`;
      const live = current.instances.find((i) => i.app === run.spec.app && i.live);
      // The first report of the new release's live instance sets the pid to watch (reports may lag the deploy).
      if (live?.release !== run.deployment.release && !this.pids.has(host.name)) continue;
      if (!live || live.state !== "healthy") return `${host.name}'s instance is ${live?.state ?? "gone"}`;
      const seen = this.pids.get(host.name) ?? live.pid;
      if (!this.pids.has(host.name)) run.event(host.name, `${this.label}: ${live.release} healthy as pid ${live.pid}`);
      this.pids.set(host.name, seen);
      if (live.pid !== seen) return `${host.name}'s instance restarted (pid ${seen} → ${live.pid})`;
    }
    return undefined;
  }
}

/**
 * Runs the analysis and settles it as every strategy does: passed → on;
 * inconclusive → the rollout pauses, saying why, until the operator
 * continues (`cutover promote` for a canary, `cutover resume` otherwise) or
 * aborts (RolloutStopped); failed → why, for the strategy to roll back.
 */
export async function analysisFailure(run: RolloutRun, hosts: HostRecord[], spec: AnalysisSpec, label: string, continueWith: "promote" | "resume"): Promise<string | undefined> {
  const result = await analyse(run, hosts, spec, label);
  if (result.verdict === "failed") return result.why;
  if (result.verdict === "passed") {
    run.event(null, `${label} passed: ${result.why}`, "analysis");
    return undefined;
  }
  run.pause(`${label} inconclusive: ${result.why}; \`cutover ${continueWith}\` continues, \`cutover abort\` rolls back`);
  await run.checkpoint();
  return undefined;
}
