/**
 * The store's tests run on both engines: `bothEngines(title, fn)` declares the test once for
 * SQLite and once for PostgreSQL (a throwaway cluster per test file, a database per test,
 * started before the file's first test). Where PostgreSQL is not installed its half is
 * skipped, the reason in its title.
 */
import test, { type ExecutionContext } from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { postgresMissing, startPostgres, type PostgresCluster } from "@cutover/testkit";
import { openDatabase, type Db } from "./database.js";
import { PostgresDb } from "./postgres.js";

export type Engine = "sqlite" | "postgres";

export interface TestStore {
  db: Db;
  /** A data dir of the test's own (the SQLite file's, or the keys' beside a PostgreSQL store). */
  dir: string;
  /** The same store opened again, as a restarted coordinator opens it. */
  reopen(): Db;
}

const missing = postgresMissing();
let cluster: PostgresCluster | undefined;
let registered = false;

function registerCluster(): void {
  if (registered || missing) return;
  registered = true;
  test.before(async () => {
    cluster = await startPostgres();
  });
  test.after.always(() => cluster?.stop());
}

/** PostgreSQL writes are fenced: the test's store leads, under epoch 1. */
function leading(url: string): PostgresDb {
  const db = PostgresDb.connect(url);
  db.unfenced("INSERT INTO coordinator_lease (id, holder, epoch, expires_at) VALUES (1, 'test', 1, 0) ON CONFLICT (id) DO NOTHING");
  db.writeEpoch = 1;
  return db;
}

/** The file's PostgreSQL cluster (started before its first test). */
export function engineCluster(): PostgresCluster {
  if (!cluster) throw new Error(missing ?? "the PostgreSQL cluster is not started: declare a test with bothEngines first");
  return cluster;
}

export function openTestStore(t: { teardown(fn: () => void): void }, engine: Engine): TestStore {
  const dir = mkdtempSync(join(tmpdir(), `cutover-store-${engine}-`));
  const opened: Db[] = [];
  t.teardown(() => {
    for (const db of opened) db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const url = engine === "postgres" ? engineCluster().createDatabase() : undefined;
  const open = () => {
    const db = url ? leading(url) : openDatabase(join(dir, "data"));
    opened.push(db);
    return db;
  };
  return { db: open(), dir, reopen: open };
}

export function bothEngines(title: string, fn: (t: ExecutionContext, engine: Engine) => void | Promise<void>): void {
  registerCluster();
  test(`[sqlite] ${title}`, (t) => fn(t, "sqlite"));
  if (missing) test.skip(`[postgres] ${title} (skipped: ${missing})`, () => {});
  else test(`[postgres] ${title}`, (t) => fn(t, "postgres"));
}
