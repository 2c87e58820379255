import type { PostgresDb } from "./postgres.js";

/** The database's clock in epoch milliseconds: every member's lease arithmetic uses this one clock, never its own. */
const DB_NOW = "CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)";

/** Who holds the lease, under which epoch, until when (the database's clock). */
export interface LeaseHolder {
  holder: string;
  epoch: number;
  expiresAt: number;
}

/** A member of the cluster as it last announced itself. */
export interface MemberRecord {
  id: string;
  apiUrl: string;
  agentUrl: string;
  version: string;
  keysId: string;
  startedAt: number;
  seenAt: number;
}

/**
 * The lease row shared by the coordinators of one PostgreSQL store (docs/ha.md). All of it is
 * compare-and-set on one row: a holder renews only under its own epoch; anyone takes an
 * expired lease over, raising the epoch. These writes are the only ones not fenced: they are
 * the fence.
 */
export class LeaseTable {
  constructor(private readonly db: PostgresDb, private readonly memberId: string, private readonly ttlMs: number) {}

  /** Extends the lease this member holds under `epoch`; false when another took it over since. */
  renew(epoch: number): boolean {
    const answer = this.db.unfenced(`UPDATE coordinator_lease SET expires_at = ${DB_NOW} + ? WHERE id = 1 AND holder = ? AND epoch = ?`, this.ttlMs, this.memberId, epoch);
    return answer.rowCount === 1;
  }

  /**
   * Takes the lease if it is free or expired, under the next epoch; answers that epoch, or
   * undefined when it is held. With `restarted`, also a lease this member's id still holds: the
   * id is the address this process now listens on, so the holder of record was an earlier
   * process on it, gone (its writes fenced by the new epoch all the same).
   */
  takeOver(restarted = false): number | undefined {
    const answer = this.db.unfenced(
      `INSERT INTO coordinator_lease (id, holder, epoch, expires_at) VALUES (1, ?, 1, ${DB_NOW} + ?)
       ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, epoch = coordinator_lease.epoch + 1, expires_at = excluded.expires_at
       WHERE coordinator_lease.expires_at < ${DB_NOW} OR (? AND coordinator_lease.holder = excluded.holder)
       RETURNING epoch`,
      this.memberId,
      this.ttlMs,
      restarted,
    );
    const row = answer.rows[0] as { epoch: number } | undefined;
    return row?.epoch;
  }

  current(): LeaseHolder | undefined {
    const row = this.db.unfenced("SELECT holder, epoch, expires_at FROM coordinator_lease WHERE id = 1").rows[0] as { holder: string; epoch: number; expires_at: number } | undefined;
    return row && { holder: row.holder, epoch: row.epoch, expiresAt: row.expires_at };
  }

  /** The database's clock now, in epoch milliseconds. */
  now(): number {
    return (this.db.unfenced(`SELECT ${DB_NOW} AS now`).rows[0] as { now: number }).now;
  }

  /** Records that this member is alive and where it answers. */
  announce(member: Omit<MemberRecord, "seenAt" | "startedAt" | "id">, startedAt: number): void {
    this.db.unfenced(
      `INSERT INTO coordinator_members (id, api_url, agent_url, version, keys_id, started_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ${DB_NOW})
       ON CONFLICT (id) DO UPDATE SET api_url = excluded.api_url, agent_url = excluded.agent_url, version = excluded.version, keys_id = excluded.keys_id, seen_at = excluded.seen_at`,
      this.memberId,
      member.apiUrl,
      member.agentUrl,
      member.version,
      member.keysId,
      startedAt,
    );
  }

  /** Members seen within `withinMs` of the database's clock, oldest first. */
  members(withinMs: number): MemberRecord[] {
    const rows = this.db.unfenced(`SELECT * FROM coordinator_members WHERE seen_at >= ${DB_NOW} - ? ORDER BY started_at, id`, withinMs).rows as Record<string, unknown>[];
    return rows.map((r) => ({ id: String(r.id), apiUrl: String(r.api_url), agentUrl: String(r.agent_url), version: String(r.version), keysId: String(r.keys_id), startedAt: Number(r.started_at), seenAt: Number(r.seen_at) }));
  }

  /** The keys every member must share (signing and secrets), as the other members recorded them; undefined on the first member. */
  clusterKeysId(): string | undefined {
    const row = this.db.unfenced("SELECT keys_id FROM coordinator_members WHERE id <> ? ORDER BY seen_at DESC LIMIT 1", this.memberId).rows[0] as { keys_id: string } | undefined;
    return row?.keys_id;
  }
}
