/**
 * Whether this coordinator leads the fleet, under which epoch, and who else is a member
 * (docs/ha.md). A lone coordinator on the embedded store always leads, under epoch 0; on
 * PostgreSQL the lease (store/lease.ts) decides.
 */
export interface Leadership {
  /** This coordinator may send commands and run rollouts now: it holds the lease, renewed in time. */
  isLeader(): boolean;
  /** The epoch this coordinator leads (or last led) under; raised on every takeover. */
  epoch(): number;
  /** The agent endpoints (ws(s)://host:port/v1/agent) of every member, the leader first. */
  members(): string[];
  /** The leader's agent endpoint when another coordinator leads, else undefined. */
  leaderAgentUrl(): string | undefined;
}

/** One coordinator on its own store: the leader for ever, under epoch 0, with no other member. */
export const SOLE_LEADERSHIP: Leadership = {
  isLeader: () => true,
  epoch: () => 0,
  members: () => [],
  leaderAgentUrl: () => undefined,
};
