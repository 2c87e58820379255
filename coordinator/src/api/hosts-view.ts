import type { HostRecord, HostResources, AppInstanceReport } from "../store/hosts.js";
import type { HostLiveness } from "../fleet/fleet.js";

/** A host as `GET /v1/hosts` and `cutover hosts --json` show it. */
export interface HostView {
  id: string;
  name: string;
  address: string;
  hostname: string;
  labels: Record<string, string>;
  /** Labels / address the host's agent presents that differ from the record, waiting for `cutover hosts accept` (null: none). */
  pendingLabels: Record<string, string> | null;
  pendingAddress: string | null;
  /** online: on time; late: heartbeats overdue but the link answers pings; unreachable: no live session. */
  state: HostLiveness;
  /** How long the host's heartbeat is overdue (0 unless `late`). */
  heartbeatOverdueMs: number;
  lastSeen: string | null;
  agentVersion: string;
  capabilities: string[];
  resources: HostResources | null;
  instances: AppInstanceReport[];
  /** Set while the host is cordoned (`cutover hosts cordon`): who, why, since when (ISO 8601); null otherwise. */
  cordoned: { by: string; reason: string; at: string } | null;
}

export function hostView(host: HostRecord, state: HostLiveness, heartbeatOverdueMs = 0): HostView {
  return {
    id: host.id,
    name: host.name,
    address: host.address,
    hostname: host.hostname,
    labels: host.labels,
    pendingLabels: host.pendingLabels,
    pendingAddress: host.pendingAddress,
    state,
    heartbeatOverdueMs,
    lastSeen: host.lastSeen ? new Date(host.lastSeen).toISOString() : null,
    agentVersion: host.agentVersion,
    capabilities: host.capabilities,
    resources: host.resources,
    instances: host.instances,
    cordoned: host.cordon && { by: host.cordon.by, reason: host.cordon.reason, at: new Date(host.cordon.at).toISOString() },
  };
}
