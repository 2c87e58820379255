/**
 * The thread that talks to PostgreSQL for store/postgres.ts. The store's callers are
 * synchronous (the embedded SQLite store is), so the main thread posts each query here and
 * waits for the answer (synckit: a SharedArrayBuffer and Atomics.wait); this thread runs it
 * on the connection `pg` holds. One connection per opened store, used by one caller at a
 * time: transactions are as serial as SQLite's.
 */
import pg from "pg";
import { runAsWorker } from "synckit";

// int8 (count(*), BIGINT columns: epoch-millisecond times) and numeric come back as numbers, as from SQLite.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (value) => Number(value));

export type WorkerCall =
  | { op: "connect"; url: string; statementTimeoutMs: number }
  | { op: "query"; handle: number; sql: string; params: unknown[] }
  /** Several statements in one round trip from the main thread, in order; the answer is the `answer` step's. */
  | { op: "batch"; handle: number; steps: BatchStep[] }
  /**
   * Statements handed to the connection's queue and answered at once, before they run: they run
   * in order, before any statement asked for after them. The answer is the failures of earlier
   * enqueued batches, one per batch (its first error; the rest of that transaction was not kept).
   */
  | { op: "enqueue"; handle: number; steps: BatchStep[] }
  | { op: "close"; handle: number };

export interface BatchStep {
  sql: string;
  params: unknown[];
  /** This step's rows are the batch's answer. */
  answer?: boolean;
}

export interface EnqueuedFailure {
  message: string;
  code?: string;
}

export interface QueryAnswer {
  rows: Record<string, unknown>[];
  rowCount: number;
}

const clients = new Map<number, pg.Client>();
let nextHandle = 1;
const enqueuedFailures = new Map<number, EnqueuedFailure[]>();

function client(handle: number): pg.Client {
  const found = clients.get(handle);
  if (!found) throw new Error(`the PostgreSQL connection ${handle} is closed`);
  return found;
}

/**
 * BYTEA values as copies of their own bytes: pg parses small ones into Node's shared 8 KiB pool,
 * and a view crosses to the main thread with the whole pool behind it (a host's 32-byte key,
 * held by its session, would keep 8 KiB).
 */
function ownBytes(row: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(row)) if (Buffer.isBuffer(value)) row[key] = new Uint8Array(value);
  return row;
}

/** Per connection, the last statement asked for: each runs once the one before it has (pg runs one at a time). */
const tails = new WeakMap<pg.Client, Promise<unknown>>();

function query(connection: pg.Client, sql: string, params: unknown[]): Promise<QueryAnswer> {
  const run = async () => {
    const result = await connection.query({ text: sql, values: params });
    // A multi-statement text (a migration) answers an array of results, and no rows.
    return { rows: ((result.rows ?? []) as Record<string, unknown>[]).map(ownBytes), rowCount: result.rowCount ?? 0 };
  };
  const answer = (tails.get(connection) ?? Promise.resolve()).then(run, run);
  tails.set(connection, answer.catch(() => {}));
  return answer;
}

async function call(request: WorkerCall): Promise<QueryAnswer | number | EnqueuedFailure[] | undefined> {
  switch (request.op) {
    case "connect": {
      const connection = new pg.Client({ connectionString: request.url, statement_timeout: request.statementTimeoutMs, connectionTimeoutMillis: request.statementTimeoutMs });
      // A lost server shows on the next query as an error; the event itself must not kill the thread.
      connection.on("error", () => {});
      await connection.connect();
      const handle = nextHandle++;
      clients.set(handle, connection);
      return handle;
    }
    case "query":
      return query(client(request.handle), request.sql, request.params);
    case "batch": {
      const connection = client(request.handle);
      let answer: QueryAnswer = { rows: [], rowCount: 0 };
      // A failed step ends the batch; the caller rolls back the transaction it was in.
      for (const step of request.steps) {
        const result = await query(connection, step.sql, step.params);
        if (step.answer) answer = result;
      }
      return answer;
    }
    case "enqueue": {
      const connection = client(request.handle);
      let failed = false;
      for (const step of request.steps) {
        query(connection, step.sql, step.params).catch((error: { message: string; code?: string }) => {
          if (failed) return;
          failed = true;
          const failures = enqueuedFailures.get(request.handle) ?? [];
          failures.push({ message: error.message, code: error.code });
          enqueuedFailures.set(request.handle, failures);
        });
      }
      const earlier = enqueuedFailures.get(request.handle) ?? [];
      enqueuedFailures.delete(request.handle);
      return earlier;
    }
    case "close": {
      const connection = clients.get(request.handle);
      clients.delete(request.handle);
      enqueuedFailures.delete(request.handle);
      // After what was enqueued: the queue runs it first.
      if (connection) await query(connection, "SELECT 1", []).catch(() => {});
      await connection?.end().catch(() => {});
      return undefined;
    }
  }
}

runAsWorker(call);
