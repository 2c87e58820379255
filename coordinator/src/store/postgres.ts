import { createRequire } from "node:module";
import type { Db, Statement } from "./database.js";
import { StoreUnavailable } from "./database.js";
import { MIGRATIONS } from "./migrations.js";
import { postgresDdl, postgresPlaceholders } from "./sql-dialect.js";
import type { EnqueuedFailure, QueryAnswer, WorkerCall } from "./postgres-worker.js";

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

type Call = (request: WorkerCall) => QueryAnswer | number | EnqueuedFailure[] | undefined;
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

/** The SQLSTATE the fence raises (class "CF": cutover fencing). */
const FENCED_SQLSTATE = "CF001";
/** Tables every coordinator writes whether or not it leads: the lease itself, the members' presence, the schema version. */
const UNFENCED_TABLES = ["coordinator_lease", "coordinator_members", "cutover_schema"];

/**
 * The fence, in the database: before any statement changes a fenced table, it locks the lease
 * row `WHERE epoch = <the epoch this connection leads under>` (the session setting
 * cutover.write_epoch) and raises FENCED_SQLSTATE when there is none. The lock holds until the
 * statement's transaction ends, so a takeover's UPDATE of that row waits for the writes
 * holding it, and none lands after. Migrations set cutover.migrating for their transaction.
 */
const FENCE_BODY = `
  BEGIN
    IF current_setting('cutover.migrating', true) = 'on' THEN RETURN NULL; END IF;
    PERFORM 1 FROM coordinator_lease WHERE id = 1 AND epoch = coalesce(nullif(current_setting('cutover.write_epoch', true), ''), '-1')::bigint FOR SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'this coordinator does not hold the lease under its epoch' USING ERRCODE = '${FENCED_SQLSTATE}';
    END IF;
    RETURN NULL;
  END
`;
const FENCE_FUNCTION = `CREATE OR REPLACE FUNCTION cutover_fence() RETURNS trigger LANGUAGE plpgsql AS $fence$${FENCE_BODY}$fence$`;

const fenceTrigger = (table: string) =>
  `CREATE TRIGGER cutover_fence BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON "${table}" FOR EACH STATEMENT EXECUTE FUNCTION cutover_fence()`;

/**
 * The store on PostgreSQL, behind the same synchronous `Db` as the embedded SQLite: each call
 * waits for the worker thread's answer (postgres-worker.ts). Writes are fenced in the database
 * (FENCE_FUNCTION, a trigger on every table but UNFENCED_TABLES): once another coordinator has
 * taken the lease over, every write of this one is refused and nothing of it is kept. A
 * statement is one round trip, and a transaction's BEGIN travels with its first statement.
 */
export class PostgresDb implements Db {
  private epoch: number | undefined;
  private depth = 0;
  /** BEGIN is owed: sent with the transaction's first statement (none, if it runs none). */
  private beginOwed = false;
  open = true;

  private constructor(private readonly call: Call, private readonly handle: number) {}

  static connect(url: string): PostgresDb {
    const call = postgresWorker();
    const handle = call({ op: "connect", url, statementTimeoutMs: STATEMENT_TIMEOUT_MS }) as number;
    const db = new PostgresDb(call, handle);
    db.migrate();
    return db;
  }

  /** The epoch writes are fenced with; undefined while this coordinator does not lead (every write is refused). */
  get writeEpoch(): number | undefined {
    return this.epoch;
  }

  set writeEpoch(epoch: number | undefined) {
    this.query("SELECT set_config('cutover.write_epoch', $1, false)", [epoch === undefined ? "" : String(epoch)]);
    this.epoch = epoch;
  }

  prepare(sql: string): Statement {
    const text = postgresPlaceholders(sql);
    return {
      run: (...params) => ({ changes: this.query(text, params).rowCount }),
      get: (...params) => withBuffers(this.query(text, params).rows[0]),
      all: (...params) => this.query(text, params).rows.map((row) => withBuffers(row)!),
    };
  }

  exec(sql: string): void {
    this.query(sql, []);
  }

  /** Runs `fn` in a transaction (a savepoint when nested); it rolls back if `fn` throws. */
  transaction<T>(fn: () => T): () => T {
    return () => {
      const savepoint = `cutover_${this.depth}`;
      if (this.depth === 0) this.beginOwed = true;
      else this.query(`SAVEPOINT ${savepoint}`, []);
      this.depth++;
      try {
        const result = fn();
        this.depth--;
        this.end(this.depth === 0 ? "COMMIT" : `RELEASE SAVEPOINT ${savepoint}`);
        return result;
      } catch (error) {
        this.depth--;
        this.end(this.depth === 0 ? "ROLLBACK" : `ROLLBACK TO SAVEPOINT ${savepoint}`);
        throw error;
      }
    };
  }

  /**
   * Writes the statements in one transaction without waiting for them: the worker queues them on
   * the connection, where they run before any statement asked for after them (so reads here see
   * them). Fenced like every write. A failure of an earlier call is thrown by this one, once
   * these are queued. Inside a transaction they are part of it, and run at once.
   */
  writeBehind(statements: { sql: string; params: unknown[] }[]): void {
    if (statements.length === 0) return;
    if (this.depth > 0) {
      for (const { sql, params } of statements) this.query(postgresPlaceholders(sql), params);
      return;
    }
    const steps = [{ sql: "BEGIN", params: [] }, ...statements.map(({ sql, params }) => ({ sql: postgresPlaceholders(sql), params })), { sql: "COMMIT", params: [] }];
    const [failure] = this.call({ op: "enqueue", handle: this.handle, steps }) as EnqueuedFailure[];
    if (failure) throw this.storeError(Object.assign(new Error(failure.message), { code: failure.code }));
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

  /** Ends the transaction or savepoint; a transaction that ran no statement never began. */
  private end(sql: string): void {
    if (this.depth === 0 && this.beginOwed) {
      this.beginOwed = false;
      return;
    }
    this.query(sql, []);
  }

  private query(sql: string, params: unknown[]): QueryAnswer {
    try {
      if (!this.beginOwed) return this.call({ op: "query", handle: this.handle, sql, params }) as QueryAnswer;
      this.beginOwed = false;
      return this.call({ op: "batch", handle: this.handle, steps: [{ sql: "BEGIN", params: [] }, { sql, params, answer: true }] }) as QueryAnswer;
    } catch (error) {
      throw this.storeError(error);
    }
  }

  /** A refusal by the fence as FencedOut; any other error as it is. */
  private storeError(error: unknown): unknown {
    if ((error as { code?: string }).code !== FENCED_SQLSTATE) return error;
    return new FencedOut(this.epoch === undefined ? "this coordinator does not lead: writes go to the leader" : `this coordinator's lease (epoch ${this.epoch}) was taken over: it writes nothing more`);
  }

  /**
   * The fence's function and a trigger on every table that lacks one. Only what is missing or
   * changed: a trigger's DDL locks its table, and members start while the leader writes (a
   * reinstall at every start deadlocked with the leader's transactions).
   */
  private installFence(): void {
    const installed = this.query("SELECT prosrc FROM pg_proc WHERE proname = 'cutover_fence' AND pronamespace = current_schema()::regnamespace", []).rows[0];
    if (installed?.prosrc !== FENCE_BODY) this.query(FENCE_FUNCTION, []);
    const unfenced = this.query(
      `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename NOT IN (
         SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.tgname = 'cutover_fence' AND c.relnamespace = current_schema()::regnamespace)
       ORDER BY tablename`,
      [],
    ).rows.map((row) => String(row.tablename));
    for (const table of unfenced) if (!UNFENCED_TABLES.includes(table)) this.query(fenceTrigger(table), []);
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
      this.query("SELECT set_config('cutover.migrating', 'on', true)", []);
      for (const migration of MIGRATIONS) {
        if (migration.version <= current) continue;
        this.query(postgresDdl(migration.sql), []);
      }
      if (newest > current) {
        this.query("DELETE FROM cutover_schema", []);
        this.query("INSERT INTO cutover_schema (version) VALUES ($1)", [newest]);
      }
      this.installFence();
      this.query("COMMIT", []);
    } catch (error) {
      this.query("ROLLBACK", []);
      throw error;
    }
  }
}
