import { v1 } from "@cutover/protocol";
import { ApiError } from "../api/errors.js";
import type { LbState } from "../store/apps.js";
import type { HostRecord } from "../store/hosts.js";
import { backendFor, FULL_WEIGHT, withCordoned, withState } from "./lb-plan.js";
import { matchesSelector } from "./plan.js";
import { LB_COMMAND_TIMEOUT_MS, lbSiteOf, RESUME_WAIT_MS, type RolloutDeps } from "./run.js";

const Status = v1.CommandResult.Status;

/** What cordoning or uncordoning did at one app's front load balancer host. */
export interface LbCordonOutcome {
  app: string;
  lbHost: string;
  ok: boolean;
  /** Cordon: whether the host's in-flight requests finished within the app's lb.drain_timeout. */
  drained?: boolean;
  error?: string;
}

/**
 * Cordoning waits for no deployment: a host that a running deployment reaches (or whose
 * app's upstream it is changing) is refused, naming the deployment, so the rollout and
 * the cordon never both decide that host's upstream state. Abort or wait, then cordon.
 * Nor does it take an app's last serving host away from its load balancer.
 */
export function refuseIfDeploying(deps: Pick<RolloutDeps, "apps" | "deployments">, host: HostRecord, verb: "cordon" | "uncordon"): void {
  for (const app of deps.apps.names()) {
    const active = deps.deployments.active(app);
    if (!active) continue;
    const inRecord = deps.deployments.hosts(active.id).some((h) => h.hostName === host.name && h.batch > 0);
    const behindLb = deps.apps.lbState(app)?.backends.some((b) => b.host === host.name) ?? false;
    if (inRecord || behindLb) {
      throw new ApiError(
        409,
        "ERR_DEPLOYMENT_IN_PROGRESS",
        `${host.name} is in ${app}'s ${active.kind} ${active.id} (${active.state}); nothing was changed: wait for it to end (\`cutover status ${app} --follow\`) or \`cutover abort ${app}\`, then ${verb} again`,
      );
    }
  }
  // Checked once no deployment moves backends: a rolling batch's drain is not the steady state.
  if (verb === "cordon") {
    const upstreams = deps.apps.names().flatMap((app) => {
      const lb = deps.apps.lbState(app);
      return lb ? [{ app, lb }] : [];
    });
    const refusal = lastBackendRefusal(host.name, upstreams);
    if (refusal) throw refusal;
  }
}

/**
 * Cordoning the last host an app's load balancer sends users to would leave them nothing
 * (nginx has no upstream server to pick): refused, naming the app. Uncordon another host,
 * or deploy to more, first.
 */
export function lastBackendRefusal(host: string, upstreams: { app: string; lb: LbState }[]): ApiError | undefined {
  const alone = upstreams.filter(({ lb }) => lb.backends.some((b) => b.host === host && b.state === "up") && !lb.backends.some((b) => b.host !== host && b.state === "up")).map((u) => u.app);
  if (alone.length === 0) return undefined;
  return new ApiError(409, "ERR_LAST_BACKEND", `${host} is the last host ${alone.join(", ")}'s load balancer sends users to; cordoning it would leave them none. Nothing was changed: uncordon or add another host first`);
}

/**
 * Puts the upstream of every app that has `host` behind a front load balancer in line
 * with the store's cordons: a cordoned host drains (like a rolling batch's drain, then
 * waits for its in-flight requests up to lb.drain_timeout), an uncordoned one is back up.
 * Each app's LB hosts are told in turn; a failure is reported, not thrown, so the caller
 * names every app and LB host that did not take it.
 */
export async function applyCordon(deps: RolloutDeps, host: HostRecord, to: "drain" | "up"): Promise<LbCordonOutcome[]> {
  const outcomes: LbCordonOutcome[] = [];
  const cordoned = new Set(deps.hosts.list().filter((h) => h.cordon !== null && !(to === "up" && h.name === host.name)).map((h) => h.name));
  for (const app of deps.apps.names()) {
    const spec = deps.apps.get(app);
    const recorded = deps.apps.lbState(app);
    if (!spec?.lb || !recorded) continue;
    // Cordoned before the app's first upstream took it, it joins it on uncordon if it serves the app (fleet blue/green's groups are its strategy's).
    const joins = to === "up" && !recorded.backends.some((b) => b.host === host.name) && spec.strategy.type !== "fleet-bluegreen" && matchesSelector(host.labels, spec.hosts) && host.instances.some((i) => i.app === app && i.live);
    const lb = joins ? { ...recorded, backends: [...recorded.backends, backendFor(spec, host, "drain", FULL_WEIGHT)] } : recorded;
    const backend = lb.backends.find((b) => b.host === host.name);
    if (!backend) continue;
    // Only what the cordon changed is undone: a backend a strategy had down (fleet blue/green's idle group) stays down.
    const flipped = to === "up" ? (backend.state === "drain" ? withState(lb, [host.name], "up") : lb) : lb;
    const next = withCordoned(flipped, lb, cordoned);
    const lbHosts = deps.hosts.list().filter((h) => matchesSelector(h.labels, spec.lb!.hosts));
    let allApplied = lbHosts.length > 0;
    for (const lbHost of lbHosts) {
      try {
        await deps.fleet.whenOnline(lbHost.id, RESUME_WAIT_MS);
        const applied = await deps.fleet.sendCommand(lbHost, { applyLb: { site: lbSiteOf(spec, next) } }, LB_COMMAND_TIMEOUT_MS);
        if (applied.status !== Status.OK) throw new Error(`${applied.message} (${applied.errorCode})`);
        const outcome: LbCordonOutcome = { app, lbHost: lbHost.name, ok: true };
        if (to === "drain") {
          const timeoutMs = spec.lb.drainTimeoutMs;
          const waited = await deps.fleet.sendCommand(lbHost, { waitDrained: { app, hosts: [host.name], timeoutMs } }, timeoutMs + LB_COMMAND_TIMEOUT_MS);
          outcome.drained = waited.drained?.drained ?? false;
        }
        outcomes.push(outcome);
      } catch (error) {
        allApplied = false;
        outcomes.push({ app, lbHost: lbHost.name, ok: false, error: (error as Error).message });
      }
    }
    if (allApplied) deps.apps.saveLbState(app, next);
    deps.log.info(to === "drain" ? "cordoned host drained at the load balancer" : "uncordoned host back in the load balancer", { host: host.name, app, applied: allApplied });
  }
  return outcomes;
}
