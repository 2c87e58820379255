import type { Db } from "./database.js";

/** One audited thing: an API call that changed something, or a command sent to an agent. */
export interface AuditEntry {
  id: number;
  at: string;
  /** Who: an API token's name, or "coordinator" for commands it sends on a deployment's behalf. */
  actor: string;
  /** What, e.g. "POST /v1/deployments" or "command deploy". */
  action: string;
  /** On what: an app, a host, a token name. */
  target: string;
  /** "ok", an HTTP status, or a command status / error code. */
  outcome: string;
  detail: string;
}

/** The append-only audit trail. */
export class AuditStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  record(entry: Omit<AuditEntry, "id" | "at">): void {
    this.db
      .prepare("INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)")
      .run(this.now(), entry.actor, entry.action, entry.target, entry.outcome, entry.detail.slice(0, 2000));
  }

  /** Newest first. */
  list(options: { limit?: number; since?: number } = {}): AuditEntry[] {
    const rows = this.db
      .prepare("SELECT * FROM audit WHERE at >= ? ORDER BY id DESC LIMIT ?")
      .all(options.since ?? 0, Math.min(options.limit ?? 100, 10_000)) as (Omit<AuditEntry, "at"> & { at: number })[];
    return rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
  }
}
