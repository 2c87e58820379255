import { SERVES_VIRTUAL_HOSTS } from "@cutover/protocol";
import type { AppSpec, VirtualHostSpec } from "@cutover/spec";
import type { HostRecord } from "../store/hosts.js";
import { matchesSelector } from "./plan.js";

function usesVirtualHost(section: VirtualHostSpec | undefined): boolean {
  return Boolean(section && (section.serverNames || section.tls || section.redirectHttp || section.http2 || section.defaultServer));
}

/**
 * Why the spec's names or TLS cannot go to these hosts, or undefined: every app host (for
 * proxy's) and every LB host (for lb's) must announce SERVES_VIRTUAL_HOSTS, or it would
 * serve the port in plain HTTP to every name. Refused before anything changes.
 */
export function virtualHostsUnsupported(spec: AppSpec, appHosts: readonly HostRecord[], allHosts: readonly HostRecord[]): string | undefined {
  const lbHosts = spec.lb ? allHosts.filter((h) => matchesSelector(h.labels, spec.lb!.hosts)) : [];
  const reached = [...(usesVirtualHost(spec.proxy) ? appHosts : []), ...(usesVirtualHost(spec.lb) ? lbHosts : [])];
  const old = reached.filter((h) => !h.capabilities.includes(SERVES_VIRTUAL_HOSTS));
  if (old.length === 0) return undefined;
  const named = [...new Set(old.map((h) => `${h.name} (agent ${h.agentVersion || "unknown"})`))].join(", ");
  return `the spec has server_names, tls, redirect_http or http2, which the agents of ${named} cannot serve (no "${SERVES_VIRTUAL_HOSTS}" capability): upgrade those agents first (\`cutover agents upgrade\`)`;
}
