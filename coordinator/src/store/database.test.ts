import test from "ava";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB_FILE, openDatabase } from "./database.js";

const mode = (path: string) => statSync(path).mode & 0o777;

// SQLite only: file modes of the store on disk (a PostgreSQL store has no file here).
test("[sqlite] the data dir is made 0700 and the store's files 0600 at start, whatever they were", (t) => {
  const parent = mkdtempSync(join(tmpdir(), "cutover-db-"));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const dataDir = join(parent, "data");
  const first = openDatabase(dataDir);
  first.prepare("INSERT INTO audit (at, actor, action, target, outcome) VALUES (1, 'a', 'b', 'c', 'd')").run();
  t.is(mode(dataDir), 0o700, "a new data dir");
  for (const file of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) t.is(mode(join(dataDir, file)), 0o600, `a new ${file}`);
  first.close();

  // A restore or a copy left them readable by everyone.
  chmodSync(dataDir, 0o755);
  chmodSync(join(dataDir, DB_FILE), 0o644);
  writeFileSync(join(dataDir, `${DB_FILE}-wal`), "", { mode: 0o666 });
  chmodSync(join(dataDir, `${DB_FILE}-wal`), 0o666);
  const again = openDatabase(dataDir);
  t.teardown(() => again.close());
  t.is(mode(dataDir), 0o700);
  for (const file of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`]) t.is(mode(join(dataDir, file)), 0o600, file);
});
