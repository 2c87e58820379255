import { REMOVES_APPS, v1 } from "@cutover/protocol";
import type { AppSpec } from "@cutover/spec";
import { ApiError } from "../api/errors.js";
import type { HostRecord } from "../store/hosts.js";
import { matchesSelector } from "./plan.js";
import type { RolloutDeps } from "./run.js";

const Status = v1.CommandResult.Status;
/** Time a host has for RemoveApp on top of the app's stop timeout (its nginx -t and reload, two colors stopping). */
export const REMOVE_COMMAND_MARGIN_MS = 30_000;

/** What a host is to the app being removed: it runs it, it is its front load balancer, or both. */
export type RemovalRole = "app" | "lb" | "app+lb";

export interface RemovalTarget {
  host: HostRecord;
  role: RemovalRole;
}

/** What `cutover apps remove` did on one host. */
export interface HostRemoval {
  name: string;
  role: RemovalRole;
  ok: boolean;
  /** The colors whose process was stopped there. */
  stoppedColors: string[];
  siteRemoved: boolean;
  lbSiteRemoved: boolean;
  error: string | null;
}

/** `POST /v1/apps/:app/remove`'s answer: `removed` (the coordinator forgot the app) only when every host was cleaned. */
export interface AppRemovalView {
  app: string;
  removed: boolean;
  hosts: HostRemoval[];
}

/**
 * Every host the app may have left something on: those that report an instance of it,
 * those its spec selects (a failed first deploy may have left a site), the load-balancer
 * hosts its spec names and the backends of its last upstream. Cordoned hosts too.
 */
export function removalTargets(hosts: HostRecord[], app: string, spec: AppSpec | undefined, upstreamHosts: string[] = []): RemovalTarget[] {
  const targets: RemovalTarget[] = [];
  for (const host of hosts) {
    const runs = host.instances.some((i) => i.app === app) || (spec !== undefined && matchesSelector(host.labels, spec.hosts)) || upstreamHosts.includes(host.name);
    const fronts = spec?.lb !== undefined && matchesSelector(host.labels, spec.lb.hosts);
    if (runs || fronts) targets.push({ host, role: runs && fronts ? "app+lb" : runs ? "app" : "lb" });
  }
  return targets;
}

/**
 * Why a removal cannot start, before anything is sent: a host that could not be cleaned
 * now (unreachable) or at all (its agent predates RemoveApp) would be left half-removed,
 * so the removal is refused naming them; the operator brings them back, upgrades them, or
 * takes a dead one out of the fleet (`cutover hosts remove`), then removes again.
 */
export function removalRefusal(app: string, targets: RemovalTarget[], reachable: (host: HostRecord) => boolean): ApiError | undefined {
  const offline = targets.filter((t) => !reachable(t.host)).map((t) => t.host.name);
  if (offline.length > 0) {
    return new ApiError(
      409,
      "ERR_HOSTS_UNREACHABLE",
      `cannot remove ${app}: ${offline.join(", ")} ${offline.length === 1 ? "is" : "are"} unreachable and would keep running it; nothing was removed. Bring ${offline.length === 1 ? "it" : "them"} back (agents reconnect by themselves), or take a dead host out of the fleet with \`cutover hosts remove HOST\`, then remove again`,
    );
  }
  const old = targets.filter((t) => !t.host.capabilities.includes(REMOVES_APPS)).map((t) => `${t.host.name} (agent ${t.host.agentVersion || "unknown"})`);
  if (old.length > 0) {
    return new ApiError(412, "ERR_AGENT_UNSUPPORTED", `cannot remove ${app}: the agent on ${old.join(", ")} cannot remove apps (no "${REMOVES_APPS}" capability); nothing was removed. Upgrade ${old.length === 1 ? "it" : "them"} (\`cutover agents upgrade\`, or install.sh), then remove again`);
  }
  return undefined;
}

/**
 * Removes the app from every target: its front load balancers first (users stop reaching
 * it there), then its hosts, in parallel. Each host's outcome is reported; the caller
 * forgets the app only when every one succeeded, so a host that failed is named and a
 * second `cutover apps remove` finishes the job (RemoveApp is idempotent).
 */
export async function removeFromHosts(deps: Pick<RolloutDeps, "fleet">, app: string, targets: RemovalTarget[], stopTimeoutMs: number): Promise<HostRemoval[]> {
  const timeoutMs = stopTimeoutMs * 2 + REMOVE_COMMAND_MARGIN_MS;
  const removeOn = async ({ host, role }: RemovalTarget): Promise<HostRemoval> => {
    const base = { name: host.name, role, stoppedColors: [], siteRemoved: false, lbSiteRemoved: false };
    try {
      const result = await deps.fleet.sendCommand(host, { removeApp: { app } }, timeoutMs);
      const removed = result.appRemoved;
      if (result.status !== Status.OK) return { ...base, ok: false, error: `${result.message || "failed"} (${result.errorCode || Status[result.status]})` };
      return { ...base, ok: true, stoppedColors: removed?.stoppedColors ?? [], siteRemoved: removed?.siteRemoved ?? false, lbSiteRemoved: removed?.lbSiteRemoved ?? false, error: null };
    } catch (error) {
      return { ...base, ok: false, error: `${(error as Error).message}${(error as { code?: string }).code ? ` (${(error as { code?: string }).code})` : ""}` };
    }
  };
  const front = await Promise.all(targets.filter((t) => t.role === "lb").map(removeOn));
  const rest = await Promise.all(targets.filter((t) => t.role !== "lb").map(removeOn));
  return [...front, ...rest].sort((a, b) => a.name.localeCompare(b.name));
}
