import type { ClusterLeadership, MemberRole } from "./cluster-leadership.js";

/** GET /v1/server/status, answered by each member itself (`cutover server status`). */
export interface ServerStatus {
  store: "sqlite" | "postgres";
  /** The member that answered. */
  self: string;
  role: MemberRole;
  /** The lease holder's member id (this one, on SQLite). */
  leader: string | null;
  epoch: number;
  /** How long the lease runs without a renewal, by the database's clock, when there is one. */
  leaseExpiresInMs: number | null;
  members: { id: string; apiUrl: string; agentUrl: string; version: string; role: "leader" | "follower"; seenAgoMs: number }[];
}

export function serverStatus(cluster: ClusterLeadership | undefined, url: string): ServerStatus {
  const self = url ? new URL(url).host : "";
  if (!cluster) return { store: "sqlite", self, role: "leader", leader: self, epoch: 0, leaseExpiresInMs: null, members: [] };
  const holder = cluster.leaseHolder;
  const now = Date.now();
  return {
    store: "postgres",
    self,
    role: cluster.currentRole,
    leader: holder?.holder ?? null,
    epoch: holder?.epoch ?? 0,
    leaseExpiresInMs: holder ? holder.expiresAt - cluster.databaseNow() : null,
    members: cluster.memberRecords().map((m) => ({ id: m.id, apiUrl: m.apiUrl, agentUrl: m.agentUrl, version: m.version, role: m.id === holder?.holder ? "leader" : "follower", seenAgoMs: Math.max(0, now - m.seenAt) })),
  };
}
