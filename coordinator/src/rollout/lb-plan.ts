import type { AppSpec } from "@cutover/spec";
import type { LbBackendState, LbState } from "../store/apps.js";
import type { HostRecord } from "../store/hosts.js";

/** Weight every up backend gets when nothing is being shifted. */
export const FULL_WEIGHT = 100;

/** The app's upstream with every host up at full weight and no canary. */
export function allUp(spec: AppSpec, hosts: HostRecord[], previous?: LbState | null): LbState {
  return {
    listenPort: spec.lb!.listen,
    backends: hosts.map((h) => backendFor(spec, h, "up", FULL_WEIGHT)),
    ...(previous?.liveGroup !== undefined && { liveGroup: previous.liveGroup }),
  };
}

export function backendFor(spec: AppSpec, host: HostRecord, state: LbBackendState["state"], weight: number, group: LbBackendState["group"] = "stable"): LbBackendState {
  return { host: host.name, address: host.address, port: spec.proxy.listen, weight, state, group };
}

/** The same upstream with `hosts` set to `state` (drain for rolling, up to put them back). */
export function withState(lb: LbState, hosts: string[], state: LbBackendState["state"]): LbState {
  return { ...lb, backends: lb.backends.map((b) => (hosts.includes(b.host) ? { ...b, state } : b)) };
}

/** Canary split: `canaryHosts` in the canary group, W% of new users, sticky by cookie. */
export function withCanary(lb: LbState, spec: AppSpec, canaryHosts: string[]): LbState {
  if (spec.strategy.type !== "canary") throw new Error("not a canary spec");
  const canary = spec.strategy.canary;
  return {
    ...lb,
    backends: lb.backends.map((b) => ({ ...b, group: canaryHosts.includes(b.host) ? "canary" : "stable" })),
    canary: { cookie: canary.cookie, weightPercent: canary.weightPercent, ...(canary.pin && { pin: canary.pin }) },
  };
}

export function withoutCanary(lb: LbState): LbState {
  const { canary: _canary, ...rest } = lb;
  return { ...rest, backends: lb.backends.map((b) => ({ ...b, group: "stable" as const })) };
}

/**
 * Fleet blue/green: `percent` of traffic to the `next` group, the rest to the
 * live one; a group at 0 % is down (nginx weights start at 1).
 */
export function shifted(lb: LbState, groupOf: (host: string) => string | undefined, next: string, percent: number): LbState {
  return {
    ...lb,
    backends: lb.backends.map((b) => {
      const weight = groupOf(b.host) === next ? percent : FULL_WEIGHT - percent;
      return { ...b, weight: Math.max(weight, 1), state: weight <= 0 ? "down" : "up" };
    }),
  };
}

/**
 * The upstream as it is applied while `cordoned` hosts are kept out: each of their
 * backends drains (no new requests; in-flight ones finish), and a cordoned backend of
 * `previous` that `next` leaves out (a deploy that skipped the host) is kept, drained,
 * so uncordoning finds it. A backend already down stays down.
 */
export function withCordoned(next: LbState, previous: LbState | null, cordoned: ReadonlySet<string>): LbState {
  if (cordoned.size === 0) return next;
  const kept = (previous?.backends ?? []).filter((b) => cordoned.has(b.host) && !next.backends.some((n) => n.host === b.host));
  return {
    ...next,
    backends: [...next.backends, ...kept]
      .map((b) => (cordoned.has(b.host) && b.state === "up" ? { ...b, state: "drain" as const } : b)),
  };
}
