import { createRequire } from "node:module";
import type { Db, Statement } from "./database.js";
import { StoreUnavailable } from "./database.js";
import { MIGRATIONS } from "./migrations.js";
import { isReadOnly, postgresDdl, postgresPlaceholders } from "./sql-dialect.js";
import type { BatchStep, QueryAnswer, WorkerCall } from "./postgres-worker.js";

/** Longest a statement may run on the server before PostgreSQL cancels it. */
const STATEMENT_TIMEOUT_MS = 20_000;
/** Longest the main thread waits for the worker's answer (a bit more than a statement may take). */
const CALL_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 5_000;
/** pg_advisory_xact_lock key held while migrating, so concurrent starts migrate once. */
const MIGRATION_LOCK = 0x6375_7476; // "cutv"

/**
 * A write refused because this coordinator does not lead under the epoch it holds: another
 * took the lease over (docs/ha.md, fencing). Nothing of the refused write was kept.
 */
export class FencedOut extends Error {
  readonly code = "ERR_FENCED";
}

type Call = (request: WorkerCall) => QueryAnswer | number | undefined;
let worker: Call | undefined;

/** The worker thread, started on first use; `pg` and synckit are loaded only by a PostgreSQL store. */
function postgresWorker(): Call {
  if (worker) return worker;
  let synckit: typeof import("synckit");
  try {
    synckit = createRequire(import.meta.url)("synckit") as typeof import("synckit");
  } catch (error) {
    throw new StoreUnavailable("a PostgreSQL store needs the packages pg and synckit, which are not installed here: run the server from a checkout (npm install)", { cause: error });
  }
  worker = synckit.createSyncFn<Call>(new URL("./postgres-worker.js", import.meta.url), { timeout: CALL_TIMEOUT_MS });
  return worker;
}

/** SQLite hands back BLOBs as Buffers; the worker's answer crosses threads as Uint8Arrays. */
function withBuffers(row: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!row) return row;
  for (const [key, value] of Object.entries(row)) if (value instanceof Uint8Array && !Buffer.isBuffer(value)) row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return row;
}

const FENCE_SQL = "SELECT 1 FROM coordinator_lease WHERE id = 1 AND epoch = $1 FOR SHARE";

/**
 * The store on PostgreSQL, behind the same synchronous `Db` as the embedded SQLite: each call
 * waits for the worker thread's answer (postgres-worker.ts). Writes are fenced: every write
 * transaction first locks the lease row `WHERE epoch = <the epoch this coordinator leads
 * under>`, and finds no row, so writes nothing, once another coordinator has taken over.
 * A takeover's UPDATE of that row waits for the writes holding it, so none lands after.
 */
export class PostgresDb implements Db {
  /** The epoch writes are fenced with; undefined while this coordinator does not lead (every write is refused). */
  writeEpoch: number | undefined;
  private depth = 0;
  open = true;

  private constructor(private readonly call: Call, private readonly handle: number) {}

  static connect(url: string): PostgresDb {
    const call = postgresWorker();
    const handle = call({ op: "connect", url, statementTimeoutMs: STATEMENT_TIMEOUT_MS }) as number;
    const db = new PostgresDb(call, handle);
    db.migrate();
    return db;
  }

  prepare(sql: string): Statement {
    const text = postgresPlaceholders(sql);
    const readOnly = isReadOnly(sql);
    return {
      run: (...params) => ({ changes: this.execute(text, params, readOnly).rowCount }),
      get: (...params) => withBuffers(this.execute(text, params, readOnly).rows[0]),
      all: (...params) => this.execute(text, params, readOnly).rows.map((row) => withBuffers(row)!),
    };
  }

  exec(sql: string): void {
    this.execute(sql, [], false);
  }

  /** Runs `fn` in a transaction (a savepoint when nested), fenced once at its start; it rolls back if `fn` throws. */
  transaction<T>(fn: () => T): () => T {
    return () => {
      const savepoint = `cutover_${this.depth}`;
      if (this.depth === 0) this.batch([{ sql: "BEGIN", params: [] }, this.fenceStep()], "ROLLBACK");
      else this.query(`SAVEPOINT ${savepoint}`, []);
      this.depth++;
      try {
        const result = fn();
        this.depth--;
        this.query(this.depth === 0 ? "COMMIT" : `RELEASE SAVEPOINT ${savepoint}`, []);
        return result;
      } catch (error) {
        this.depth--;
        this.query(this.depth === 0 ? "ROLLBACK" : `ROLLBACK TO SAVEPOINT ${savepoint}`, []);
        throw error;
      }
    };
  }

  /**
   * A statement on its own, outside fencing: the lease's compare-and-set and the members'
   * presence, which a coordinator writes whether or not it leads.
   */
  unfenced(sql: string, ...params: unknown[]): QueryAnswer {
    return this.query(postgresPlaceholders(sql), params);
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.call({ op: "close", handle: this.handle });
  }

  private execute(text: string, params: unknown[], readOnly: boolean): QueryAnswer {
    // Inside a transaction the fence was checked at BEGIN and the row lock holds until COMMIT.
    if (readOnly || this.depth > 0) return this.query(text, params);
    return this.batch([{ sql: "BEGIN", params: [] }, this.fenceStep(), { sql: text, params, answer: true }, { sql: "COMMIT", params: [] }], "ROLLBACK");
  }

  private fenceStep() {
    return { sql: FENCE_SQL, params: [this.writeEpoch ?? -1], expectRow: "fenced" };
  }

  private query(sql: string, params: unknown[]): QueryAnswer {
    return this.call({ op: "query", handle: this.handle, sql, params }) as QueryAnswer;
  }

  private batch(steps: BatchStep[], onError: string): QueryAnswer {
    try {
      return this.call({ op: "batch", handle: this.handle, steps, onError }) as QueryAnswer;
    } catch (error) {
      if ((error as { code?: string }).code === "ERR_STEP_FOUND_NO_ROW") {
        throw new FencedOut(this.writeEpoch === undefined ? "this coordinator does not lead: writes go to the leader" : `this coordinator's lease (epoch ${this.writeEpoch}) was taken over: it writes nothing more`);
      }
      throw error;
    }
  }

  /** The same MIGRATIONS as SQLite, their types translated, applied once under an advisory lock however many coordinators start at once. */
  private migrate(): void {
    const newest = MIGRATIONS.at(-1)?.version ?? 0;
    this.query("BEGIN", []);
    try {
      this.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      this.query("CREATE TABLE IF NOT EXISTS cutover_schema (version INTEGER NOT NULL)", []);
      const current = Number(this.query("SELECT max(version) AS version FROM cutover_schema", []).rows[0]?.version ?? 0);
      if (current > newest) throw new Error(`the store's schema is version ${current}, newer than this coordinator knows (${newest}): run a newer cutover`);
      for (const migration of MIGRATIONS) {
        if (migration.version <= current) continue;
        this.query(postgresDdl(migration.sql), []);
      }
      if (newest > current) {
        this.query("DELETE FROM cutover_schema", []);
        this.query("INSERT INTO cutover_schema (version) VALUES ($1)", [newest]);
      }
      this.query("COMMIT", []);
    } catch (error) {
      this.query("ROLLBACK", []);
      throw error;
    }
  }
}
