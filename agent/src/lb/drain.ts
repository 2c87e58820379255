import { setTimeout as sleep } from "node:timers/promises";
import type { Handover, NginxRunner } from "../nginx/index.js";
import { childPids, processTitle } from "../nginx/proc.js";
import { backendKey, normalizeLbSite, receivesNew, type LbSiteConfig } from "./config.js";
import { getInFlight } from "./control.js";
import { LbError } from "./errors.js";
import { lbControlSocket } from "./names.js";

/*
 * When is a backend that stopped getting new requests (drain/down) done with the old ones?
 *
 * Requests can be in flight to it in two places:
 *  - workers a reload replaced. nginx cannot say which backend an old worker is still
 *    talking to, but an old worker exits only once all its requests are done (it stops
 *    accepting, closes idle keep-alive connections and closes the others after their
 *    current response). So: wait until the old workers of every reload this site went
 *    through have exited. The workers running now were started with the host out of the
 *    pool and never send it anything.
 *  - live mode's current workers: the Lua balancer counts each request on the peer it
 *    picked (`inflight <addr:port>` in the site's dict, +1 in the balancer, -1 in the log
 *    phase, moved on a retry), and the count is read through the control socket.
 *
 * Neither can be awaited as an event, so both are polled until the deadline. A worker that
 * crashes mid-request never runs its log phase, so its count stays up: waitDrained then
 * ends at its timeout with drained=false, the safe side for a rolling restart.
 *
 * The replaced generations are remembered per runner and app by applyLbSite/removeLbSite.
 * A process that has not applied the site (the agent restarted) knows none, and then
 * waits for every worker of the master that is shutting down: more than needed when
 * another site reloaded too, never less.
 */

/** /proc and the dict announce nothing; 5 ms costs little CPU and little latency. */
export const DRAIN_POLL_INTERVAL_MS = 5;

const replaced = new WeakMap<NginxRunner, Map<string, Handover[]>>();

function aliveOldWorkers(handover: Handover): number[] {
  const children = new Set(childPids(handover.masterPid));
  return handover.oldWorkers.filter((pid) => children.has(pid) && processTitle(pid) !== null);
}

/** Called after each of the site's reloads (and with null when it changed without one): from now on this process knows its generations. */
export function recordGenerations(runner: NginxRunner, app: string, handover: Handover | null): void {
  let apps = replaced.get(runner);
  if (apps === undefined) {
    apps = new Map();
    replaced.set(runner, apps);
  }
  const pending = (apps.get(app) ?? []).filter((h) => aliveOldWorkers(h).length > 0);
  if (handover !== null) pending.push(handover);
  apps.set(app, pending);
}

function masterPid(runner: NginxRunner): number | null {
  const withPid = runner as NginxRunner & { masterPid?: () => number | null };
  return typeof withPid.masterPid === "function" ? withPid.masterPid() : null;
}

/** Workers of replaced generations that may still serve requests of `app`'s old configs. */
export function retiringWorkers(runner: NginxRunner, app: string): number[] {
  const known = replaced.get(runner)?.get(app);
  if (known !== undefined) return [...new Set(known.flatMap(aliveOldWorkers))];
  const pid = masterPid(runner);
  if (pid === null) return [];
  return childPids(pid).filter((child) => processTitle(child)?.includes("shutting down") ?? false);
}

export interface DrainResult {
  /** No request to the hosts is in flight any more. */
  drained: boolean;
  /**
   * What is still pending at the end. live: requests to the hosts in flight (the balancer's
   * count) plus replaced workers still running; reload: replaced nginx workers still finishing
   * requests (nginx cannot count per backend).
   */
  inFlight: number;
  waitedMs: number;
}

/**
 * Resolves once nothing is in flight to `hosts` any more (drained), or when `timeoutMs`
 * passes (drained: false). `config` is the site as applied, with the hosts set to
 * drain/down (or weight 0); a host that still gets new requests is refused.
 */
export async function waitDrained(runner: NginxRunner, config: LbSiteConfig, hosts: string[], timeoutMs: number): Promise<DrainResult> {
  const site = normalizeLbSite(config);
  const keys = hosts.map((host) => {
    const backend = site.backends.find((b) => b.host === host);
    if (backend === undefined) {
      throw new LbError("ERR_LB_UNKNOWN_HOST", `LB site ${site.app}: no backend named ${JSON.stringify(host)}; known: ${site.backends.map((b) => b.host).join(", ")}`);
    }
    if (receivesNew(backend)) {
      throw new LbError(
        "ERR_LB_HOST_UP",
        `LB site ${site.app}: ${host} still gets new requests (up, weight ${backend.weight}); apply it as "drain" or "down" first`,
      );
    }
    return backendKey(backend);
  });
  const socket = lbControlSocket(runner, site.app);
  const started = performance.now();
  const pending = async (): Promise<number> => {
    let count = retiringWorkers(runner, site.app).length;
    if (site.switchMode === "live") {
      const counts = await getInFlight(socket);
      for (const key of keys) count += Math.max(0, counts.get(key) ?? 0);
    }
    return count;
  };
  for (;;) {
    const inFlight = await pending();
    const waitedMs = performance.now() - started;
    if (inFlight === 0) return { drained: true, inFlight, waitedMs };
    if (waitedMs >= timeoutMs) return { drained: false, inFlight, waitedMs };
    await sleep(DRAIN_POLL_INTERVAL_MS);
  }
}
