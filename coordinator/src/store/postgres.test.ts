import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { MIGRATIONS } from "./migrations.js";
import { bothEngines, engineCluster, openTestStore } from "./engines.testing.js";
import { FencedOut, PostgresDb } from "./postgres.js";
import { postgresMissing } from "@cutover/testkit";
import type { Db } from "./database.js";

const names = (db: Db) => (db.prepare("SELECT app FROM app_locks ORDER BY app").all() as { app: string }[]).map((r) => r.app);
const lock = (db: Db, app: string) => db.prepare("INSERT INTO app_locks (app, holder, reason, acquired_at) VALUES (?, 'ops', '', ?)").run(app, 1_764_000_000_000);

bothEngines("a transaction whose function throws keeps nothing; a nested one that throws rolls back only its part", (t, engine) => {
  const { db } = openTestStore(t, engine);
  t.throws(() => db.transaction(() => {
    lock(db, "a");
    throw new Error("midway");
  })(), { message: "midway" });
  t.deepEqual(names(db), []);
  db.transaction(() => {
    lock(db, "b");
    t.throws(() => db.transaction(() => {
      lock(db, "c");
      throw new Error("inner");
    })());
    lock(db, "d");
  })();
  t.deepEqual(names(db), ["b", "d"]);
});

bothEngines("the engines answer alike: BLOBs as Buffers, epoch milliseconds as numbers, text sorted byte by byte", (t, engine) => {
  const { db } = openTestStore(t, engine);
  for (const app of ["b", "a", "B", "_x"]) lock(db, app);
  t.deepEqual(names(db), ["B", "_x", "a", "b"], "byte order, as SQLite's BINARY collation");
  const at = db.prepare("SELECT acquired_at FROM app_locks WHERE app = 'a'").get() as { acquired_at: unknown };
  t.is(at.acquired_at, 1_764_000_000_000);
  db.prepare("INSERT INTO retired_hosts (public_key, name, removed_at, removed_by) VALUES (?, 'h', 1, 'ops')").run(Buffer.from([0, 1, 255]));
  const row = db.prepare("SELECT public_key FROM retired_hosts").get() as { public_key: unknown };
  t.true(Buffer.isBuffer(row.public_key));
  t.deepEqual([...(row.public_key as Buffer)], [0, 1, 255]);
  // Held by a session for as long as it lasts: it must not keep a shared pool of bytes alive behind it.
  if (engine === "postgres") t.is((row.public_key as Buffer).buffer.byteLength, 3, "only its own bytes");
});

const missing = postgresMissing();
(missing ? test.skip : test)(`[postgres] once another coordinator raised the epoch, a write of this one is refused and nothing of it is kept${missing ? ` (skipped: ${missing})` : ""}`, (t) => {
  const { db } = openTestStore(t, "postgres");
  lock(db, "before");
  const pg = db as PostgresDb;
  pg.unfenced("UPDATE coordinator_lease SET epoch = epoch + 1");
  t.throws(() => lock(db, "after"), { instanceOf: FencedOut });
  t.throws(() => db.transaction(() => lock(db, "in a transaction"))(), { instanceOf: FencedOut });
  t.deepEqual(names(db), ["before"], "reads still work; nothing was written");
  pg.writeEpoch = undefined;
  t.throws(() => lock(db, "as a follower"), { instanceOf: FencedOut, message: /does not lead/ });
});

(missing ? test.skip : test)(`[postgres] the fence is in the database: under a stale epoch no statement changes any table but the lease's and the members'${missing ? ` (skipped: ${missing})` : ""}`, (t) => {
  const { db } = openTestStore(t, "postgres");
  const pg = db as PostgresDb;
  const tables = (pg.unfenced("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").rows as { tablename: string }[]).map((r) => r.tablename);
  t.true(tables.length > 10, "every table of the migrations");
  pg.unfenced("UPDATE coordinator_lease SET epoch = epoch + 1");
  const refused = tables.filter((table) => {
    try {
      db.exec(`DELETE FROM "${table}" WHERE false`);
      return false;
    } catch (error) {
      if (!(error instanceof FencedOut)) throw error;
      return true;
    }
  });
  t.deepEqual(tables.filter((table) => !refused.includes(table)), ["coordinator_lease", "coordinator_members", "cutover_schema"], "only the tables the fence itself lives in");
  t.notThrows(() => db.transaction(() => db.prepare("SELECT count(*) FROM hosts").get())(), "reads, in a transaction too, are not writes");
});

(missing ? test.skip : test)(`[postgres] writes behind: read back by the next statement, fenced alike, a refusal told by the next write behind${missing ? ` (skipped: ${missing})` : ""}`, (t) => {
  const { db } = openTestStore(t, "postgres");
  const pg = db as PostgresDb;
  const lockRow = (app: string) => ({ sql: "INSERT INTO app_locks (app, holder, reason, acquired_at) VALUES (?, 'ops', '', 1)", params: [app] });
  pg.writeBehind([lockRow("a"), lockRow("b")]);
  t.deepEqual(names(db), ["a", "b"], "a read after the write runs after it");
  pg.unfenced("UPDATE coordinator_lease SET epoch = epoch + 1");
  pg.writeBehind([lockRow("c")]);
  t.deepEqual(names(db), ["a", "b"], "refused by the fence");
  pg.unfenced("UPDATE coordinator_lease SET epoch = epoch - 1");
  t.throws(() => pg.writeBehind([lockRow("d")]), { instanceOf: FencedOut }, "the next one is told, once its own statements are queued");
  t.notThrows(() => pg.writeBehind([lockRow("e")]), "told once");
  t.deepEqual(names(db), ["a", "b", "d", "e"]);
});

(missing ? test.skip : test)(`[postgres] coordinators starting at the same moment on an empty database migrate it once${missing ? ` (skipped: ${missing})` : ""}`, async (t) => {
  const url = engineCluster().createDatabase();
  // Separate processes, as separate coordinators are: one process's stores share one worker thread.
  const opener = `import { PostgresDb } from ${JSON.stringify(new URL("./postgres.js", import.meta.url).href)}; PostgresDb.connect(process.argv[1]).close();`;
  const children = Array.from({ length: 3 }, () => spawn(process.execPath, ["--input-type=module", "-e", opener, url], { stdio: ["ignore", "ignore", "pipe"] }));
  const exits = await Promise.all(children.map(async (child) => {
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d));
    const [code] = (await once(child, "exit")) as [number];
    return { code, stderr };
  }));
  t.deepEqual(exits, exits.map(() => ({ code: 0, stderr: "" })), "every start succeeds");
  t.is(engineCluster().query(url, "SELECT count(*) || ' ' || max(version) FROM cutover_schema").trim(), `1 ${MIGRATIONS.at(-1)!.version}`, "one schema version row, the newest");
});

(missing ? test.skip : test)(`[postgres] a member starting while the leader is mid-write does not wait for it: the fence is installed once, not at every start${missing ? ` (skipped: ${missing})` : ""}`, async (t) => {
  const url = engineCluster().createDatabase();
  const opener = `import { PostgresDb } from ${JSON.stringify(new URL("./postgres.js", import.meta.url).href)}; PostgresDb.connect(process.argv[1]).close();`;
  const start = async () => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", opener, url], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr += d));
    const [code] = (await once(child, "exit")) as [number];
    return { code, stderr };
  };
  t.deepEqual(await start(), { code: 0, stderr: "" }, "the first start migrates and installs the fence");
  // The leader's write transaction holds its tables' locks until it commits.
  const leader = PostgresDb.connect(url);
  t.teardown(() => leader.close());
  leader.unfenced("INSERT INTO coordinator_lease (id, holder, epoch, expires_at) VALUES (1, 'test', 1, 0) ON CONFLICT (id) DO NOTHING");
  leader.writeEpoch = 1;
  leader.unfenced("BEGIN");
  leader.unfenced("INSERT INTO app_locks (app, holder, reason, acquired_at) VALUES ('web', 'ops', '', 1)");
  t.deepEqual(await start(), { code: 0, stderr: "" }, "a later start takes no table lock the leader holds");
  leader.unfenced("COMMIT");
});
