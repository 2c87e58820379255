import { writeBehind, type Db } from "./database.js";
import { FencedOut } from "./postgres.js";

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

/**
 * The most characters each field keeps. Some of what lands here is chosen by
 * the caller (a path, a token name, a host's message): longer text is cut and
 * ends with TRUNCATED_MARK, so one row stays small whoever wrote it.
 */
export const AUDIT_FIELD_LIMITS = { actor: 200, action: 200, target: 500, outcome: 100, detail: 1000 } as const;
export const TRUNCATED_MARK = "…[truncated]";

function capped(text: string, limit: number): string {
  return text.length <= limit ? text : text.slice(0, limit - TRUNCATED_MARK.length) + TRUNCATED_MARK;
}

/** Entries written per statement (six parameters each, far below either engine's limit). */
const ENTRIES_PER_STATEMENT = 200;

function insertStatement(count: number): string {
  return `INSERT INTO audit (at, actor, action, target, outcome, detail) VALUES ${Array.from({ length: count }, () => "(?, ?, ?, ?, ?, ?)").join(", ")}`;
}

/**
 * The append-only audit trail. Entries recorded in one turn of the event loop
 * are written in one transaction at the end of it (a command fanned out to
 * thousands of agents is one write, not thousands).
 */
export class AuditStore {
  private queue: [number, string, string, string, string, string][] = [];
  private readonly flushAll;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {
    // Many rows a statement, and not waited for: on PostgreSQL a round trip the event loop would wait for.
    this.flushAll = (rows: [number, string, string, string, string, string][]) => {
      const statements = [];
      for (let start = 0; start < rows.length; start += ENTRIES_PER_STATEMENT) {
        const slice = rows.slice(start, start + ENTRIES_PER_STATEMENT);
        statements.push({ sql: insertStatement(slice.length), params: slice.flat() });
      }
      writeBehind(db, statements);
    };
  }

  record(entry: Omit<AuditEntry, "id" | "at">): void {
    if (this.queue.length === 0) setImmediate(() => this.flush());
    const limits = AUDIT_FIELD_LIMITS;
    this.queue.push([
      this.now(),
      capped(entry.actor, limits.actor),
      capped(entry.action, limits.action),
      capped(entry.target, limits.target),
      capped(entry.outcome, limits.outcome),
      capped(entry.detail, limits.detail),
    ]);
  }

  /** Writes what is queued (also called before reading, and at shutdown). */
  flush(): void {
    if (this.queue.length === 0 || !this.db.open) return;
    const rows = this.queue;
    this.queue = [];
    try {
      this.flushAll(rows);
    } catch (error) {
      // A follower of a shared store writes nothing: the calls it forwards are audited by the leader that answers them.
      if (!(error instanceof FencedOut)) throw error;
    }
  }

  /** Newest first. */
  list(options: { limit?: number; since?: number } = {}): AuditEntry[] {
    this.flush();
    const rows = this.db
      .prepare("SELECT * FROM audit WHERE at >= ? ORDER BY id DESC LIMIT ?")
      .all(options.since ?? 0, Math.min(options.limit ?? 100, 10_000)) as (Omit<AuditEntry, "at"> & { at: number })[];
    return rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() }));
  }
}
