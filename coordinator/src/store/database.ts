import type Database from "better-sqlite3";
import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { MIGRATIONS } from "./migrations.js";

/** One prepared statement: better-sqlite3's, or store/postgres.ts's with the same answers. */
export interface Statement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/**
 * The store's engine, as the stores use it: synchronous, as better-sqlite3 is. Two engines
 * implement it: the embedded SQLite (the default; a `Database` as it is) and PostgreSQL
 * (store/postgres.ts), for coordinators that share one store (docs/ha.md).
 */
export interface Db {
  prepare(sql: string): Statement;
  /** `fn` wrapped in BEGIN…COMMIT (a savepoint when nested), rolled back if it throws. */
  transaction<T>(fn: () => T): () => T;
  exec(sql: string): void;
  /** False once closed. */
  readonly open: boolean;
  close(): void;
}

export const DATA_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;
export const DB_FILE = "cutover.db";

/** The store cannot open on this install: the message says what to install. */
export class StoreUnavailable extends Error {}

/**
 * The SQLite addon, loaded when the store opens rather than when this module is imported:
 * the one-file CLI (scripts/bundle-cli.mjs) carries everything but this native module,
 * which only `cutover server` needs.
 */
function sqlite(): typeof Database {
  try {
    return createRequire(import.meta.url)("better-sqlite3") as typeof Database;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "MODULE_NOT_FOUND") throw error;
    throw new StoreUnavailable("cutover server needs the SQLite addon better-sqlite3 (12.x), and it is not installed here: `npm install better-sqlite3@12` beside cutover.mjs, or run the server from a checkout", { cause: error });
  }
}

/**
 * Opens (creating if needed) the coordinator's SQLite store in `dataDir` and
 * migrates it. The data dir is made 0700 and the store's files 0600 at every
 * start, whatever mode they were left with: the store holds token hashes,
 * host keys and every spec's env.
 */
export function openDatabase(dataDir: string): Database.Database {
  const Sqlite = sqlite();
  mkdirSync(dataDir, { recursive: true, mode: DATA_DIR_MODE });
  chmodSync(dataDir, DATA_DIR_MODE);
  const path = join(dataDir, DB_FILE);
  const db = new Sqlite(path);
  // Before WAL mode: SQLite gives the -wal and -shm files it creates the main file's mode.
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, PRIVATE_FILE_MODE);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  migrate(db);
  return db;
}

export function schemaVersion(db: Database.Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

function migrate(db: Database.Database): void {
  const current = schemaVersion(db);
  const newest = MIGRATIONS.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new Error(`the store's schema is version ${current}, newer than this coordinator knows (${newest}): run a newer cutover`);
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
}

/** An engine that can write without the caller waiting for the statements to run (store/postgres.ts). */
interface WritesBehind {
  writeBehind(statements: { sql: string; params: unknown[] }[]): void;
}

/**
 * Writes the statements in one transaction, for writes nothing waits on (heartbeat figures, the
 * audit trail): on PostgreSQL without waiting for the round trip, later reads still seeing them;
 * on SQLite, where a write takes microseconds, at once.
 */
export function writeBehind(db: Db, statements: { sql: string; params: unknown[] }[]): void {
  if ("writeBehind" in db) return (db as Db & WritesBehind).writeBehind(statements);
  db.transaction(() => {
    for (const { sql, params } of statements) statement(db, sql).run(...params);
  })();
}

const statements = new WeakMap<Db, Map<string, Statement>>();

/** `db.prepare(sql)`, prepared once per database and reused (hot paths run thousands of times a second). */
export function statement(db: Db, sql: string): Statement {
  let cache = statements.get(db);
  if (!cache) statements.set(db, (cache = new Map()));
  let prepared = cache.get(sql);
  if (!prepared) cache.set(sql, (prepared = db.prepare(sql)));
  return prepared;
}
