import { SERVES_VIRTUAL_HOSTS, TAKES_SECRETS } from "@cutover/protocol";
import { secretNamesOf, type AppSpec, type VirtualHostSpec } from "@cutover/spec";
import type { HostRecord } from "../store/hosts.js";
import { matchesSelector } from "./plan.js";

function usesVirtualHost(section: VirtualHostSpec | undefined): boolean {
  return Boolean(section && (section.serverNames || section.tls || section.redirectHttp || section.http2 || section.defaultServer));
}

/** A spec feature only newer agents carry out, and the hosts that must: an older agent would ignore its fields. */
interface Feature {
  capability: string;
  /** What the spec uses, for the refusal; undefined when it does not. */
  used(spec: AppSpec): string | undefined;
  /** "app": the app's hosts; "lb": its load balancers. */
  on: "app" | "lb";
}

const FEATURES: readonly Feature[] = [
  // An older agent would start the app without its secrets and env_file.
  { capability: TAKES_SECRETS, on: "app", used: (spec) => (secretNamesOf(spec).length > 0 || spec.run.envFile ? "secrets or run.env_file" : undefined) },
  // An older agent would serve the port in plain HTTP to every name.
  { capability: SERVES_VIRTUAL_HOSTS, on: "app", used: (spec) => (usesVirtualHost(spec.proxy) ? "proxy server_names, tls, redirect_http or http2" : undefined) },
  { capability: SERVES_VIRTUAL_HOSTS, on: "lb", used: (spec) => (usesVirtualHost(spec.lb) ? "lb server_names, tls, redirect_http or http2" : undefined) },
];

/**
 * Why the spec cannot go to these hosts, or undefined: each feature it uses must be
 * announced by every agent that carries it out (the app's hosts, or its LB hosts).
 * Refused before anything changes, naming the hosts and their versions.
 */
export function unsupportedFeatures(spec: AppSpec, appHosts: readonly HostRecord[], allHosts: readonly HostRecord[]): string | undefined {
  const lbHosts = spec.lb ? allHosts.filter((h) => matchesSelector(h.labels, spec.lb!.hosts)) : [];
  const reasons: string[] = [];
  for (const feature of FEATURES) {
    const used = feature.used(spec);
    if (used === undefined) continue;
    const old = (feature.on === "app" ? appHosts : lbHosts).filter((h) => !h.capabilities.includes(feature.capability));
    if (old.length === 0) continue;
    const named = old.map((h) => `${h.name} (agent ${h.agentVersion || "unknown"})`).join(", ");
    reasons.push(`the spec has ${used}, which the agents of ${named} cannot carry out (no "${feature.capability}" capability)`);
  }
  return reasons.length === 0 ? undefined : `${reasons.join("; ")}: upgrade those agents first (\`cutover agents upgrade\`)`;
}
