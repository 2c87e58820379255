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
  | { op: "close"; handle: number };

export interface BatchStep {
  sql: string;
  params: unknown[];
  /** This step's rows are the batch's answer. */
  answer?: boolean;
}

export interface QueryAnswer {
  rows: Record<string, unknown>[];
  rowCount: number;
}

const clients = new Map<number, pg.Client>();
let nextHandle = 1;

function client(handle: number): pg.Client {
  const found = clients.get(handle);
  if (!found) throw new Error(`the PostgreSQL connection ${handle} is closed`);
  return found;
}

async function query(connection: pg.Client, sql: string, params: unknown[]): Promise<QueryAnswer> {
  const result = await connection.query({ text: sql, values: params });
  return { rows: result.rows as Record<string, unknown>[], rowCount: result.rowCount ?? 0 };
}

async function call(request: WorkerCall): Promise<QueryAnswer | number | undefined> {
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
    case "close": {
      const connection = clients.get(request.handle);
      clients.delete(request.handle);
      await connection?.end().catch(() => {});
      return undefined;
    }
  }
}

runAsWorker(call);
