import test from "ava";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DB_FILE } from "./database.js";
import { bothEngines, openTestStore, type Engine } from "./engines.testing.js";
import { loadOrCreateSecretsKey, openSecret, sealSecret, SECRETS_KEY_FILE, SecretUnreadable } from "./secret-box.js";
import { SecretStore } from "./secrets.js";

const VALUE = "postgres://geoip:s3cr3t-Pa55@db.internal:5432/geoip";

function dataDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-secrets-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function store(t: { teardown(fn: () => void): void }, engine: Engine, now = () => 1_700_000_000_000) {
  const { db, dir, reopen } = openTestStore(t, engine);
  const key = loadOrCreateSecretsKey(dir);
  return { secrets: new SecretStore(db, key, now), db, dir, key, reopen };
}

test("the secrets key is 32 random bytes in a 0600 file, made once and read back the same", (t) => {
  const dir = dataDir(t);
  const key = loadOrCreateSecretsKey(dir);
  const path = join(dir, SECRETS_KEY_FILE);
  t.is(key.length, 32);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.deepEqual(loadOrCreateSecretsKey(dir), key, "a second start reads the same key");
  t.notDeepEqual(loadOrCreateSecretsKey(dataDir(t)), key, "another data dir, another key");
});

test("a secrets key left 0644 is 0600 again at the next start; one of the wrong size is refused, not replaced", (t) => {
  const dir = dataDir(t);
  const key = loadOrCreateSecretsKey(dir);
  const path = join(dir, SECRETS_KEY_FILE);
  chmodSync(path, 0o644);
  t.deepEqual(loadOrCreateSecretsKey(dir), key);
  t.is(statSync(path).mode & 0o777, 0o600);
  writeFileSync(path, "short");
  t.throws(() => loadOrCreateSecretsKey(dir), { message: /secrets\.key is 5 bytes, not the 32 of a secrets key; restore it from a backup/ });
  t.is(readFileSync(path, "utf8"), "short");
});

test("seal and open round-trip; the sealed bytes are nonce ‖ ciphertext ‖ tag, new each time, without the value", (t) => {
  const key = randomBytes(32);
  const sealed = sealSecret(key, "geoip", "DATABASE_URL", VALUE);
  t.is(sealed.length, 12 + Buffer.byteLength(VALUE) + 16);
  t.false(sealed.includes(Buffer.from(VALUE)));
  t.false(sealed.includes(Buffer.from("s3cr3t")));
  t.notDeepEqual(sealSecret(key, "geoip", "DATABASE_URL", VALUE), sealed, "a fresh nonce per seal");
  t.is(openSecret(key, "geoip", "DATABASE_URL", sealed), VALUE);
  t.is(openSecret(key, "geoip", "EMPTYISH", sealSecret(key, "geoip", "EMPTYISH", "ü ☃ =x")), "ü ☃ =x");
});

test("a sealed secret opens only with its key, app and name, and unchanged", (t) => {
  const key = randomBytes(32);
  const sealed = sealSecret(key, "geoip", "DATABASE_URL", VALUE);
  const refused = { instanceOf: SecretUnreadable, code: "ERR_SECRET_UNREADABLE" } as const;
  t.throws(() => openSecret(randomBytes(32), "geoip", "DATABASE_URL", sealed), refused);
  t.throws(() => openSecret(key, "billing", "DATABASE_URL", sealed), refused);
  t.throws(() => openSecret(key, "geoip", "API_KEY", sealed), refused);
  const flipped = Buffer.from(sealed);
  flipped[14]! ^= 1;
  t.throws(() => openSecret(key, "geoip", "DATABASE_URL", flipped), refused);
  t.throws(() => openSecret(key, "geoip", "DATABASE_URL", sealed.subarray(0, 20)), refused);
  const error = t.throws(() => openSecret(key, "billing", "DATABASE_URL", sealed));
  t.is(error?.message, "the stored secret DATABASE_URL of billing does not open with DATA_DIR/secrets.key: the key was replaced or the store was altered; set it again with `cutover secret set billing DATABASE_URL`");
});

bothEngines("set, list, values and remove: names and when they were set, values only through values()", (t, engine) => {
  let now = 1_700_000_000_000;
  const { secrets } = store(t, engine, () => now);
  t.deepEqual(secrets.set("geoip", "DATABASE_URL", VALUE, "ops"), { app: "geoip", name: "DATABASE_URL", setAt: now, setBy: "ops" });
  secrets.set("geoip", "API_KEY", "k1", "ops");
  secrets.set("billing", "API_KEY", "other app", "ci");
  now += 1000;
  t.deepEqual(secrets.set("geoip", "API_KEY", "k2", "ci"), { app: "geoip", name: "API_KEY", setAt: now, setBy: "ci" }, "set again: replaced");
  t.deepEqual(secrets.list("geoip"), [
    { app: "geoip", name: "API_KEY", setAt: now, setBy: "ci" },
    { app: "geoip", name: "DATABASE_URL", setAt: now - 1000, setBy: "ops" },
  ]);
  t.deepEqual(secrets.values("geoip", ["DATABASE_URL"]), { DATABASE_URL: VALUE });
  t.deepEqual(secrets.values("geoip"), { API_KEY: "k2", DATABASE_URL: VALUE });
  t.deepEqual(secrets.values("billing"), { API_KEY: "other app" });
  t.deepEqual(secrets.missing("geoip", ["DATABASE_URL", "NOPE", "API_KEY"]), ["NOPE"]);
  t.like(secrets.remove("geoip", "API_KEY"), { app: "geoip", name: "API_KEY" });
  t.is(secrets.remove("geoip", "API_KEY"), null);
  t.deepEqual(secrets.missing("geoip", ["API_KEY"]), ["API_KEY"]);
  t.deepEqual(secrets.values("billing"), { API_KEY: "other app" }, "another app's secret of the same name stays");
});

// SQLite only: it reads the store's files on disk.
test("[sqlite] the store file and its WAL never hold a secret's bytes; a row moved to another app does not open", (t) => {
  const { secrets, db, dir } = store(t, "sqlite");
  secrets.set("geoip", "DATABASE_URL", VALUE, "ops");
  secrets.set("geoip", "OTHER", "x", "ops");
  for (const file of [DB_FILE, `${DB_FILE}-wal`]) {
    const bytes = readFileSync(join(dir, "data", file));
    t.false(bytes.includes(Buffer.from(VALUE)), file);
    t.false(bytes.includes(Buffer.from("s3cr3t-Pa55")), file);
  }
  db.prepare("UPDATE app_secrets SET app = 'billing' WHERE name = 'DATABASE_URL'").run();
  t.throws(() => secrets.values("billing"), { code: "ERR_SECRET_UNREADABLE" });
  db.prepare("UPDATE app_secrets SET sealed = (SELECT sealed FROM app_secrets WHERE name = 'OTHER') WHERE name = 'DATABASE_URL'").run();
  t.throws(() => secrets.values("billing"), { code: "ERR_SECRET_UNREADABLE" }, "another name's sealed bytes do not open under this name");
});

bothEngines("secrets outlive the coordinator: a restart with the same data dir opens them", (t, engine) => {
  const { secrets, db, dir, reopen } = store(t, engine);
  secrets.set("geoip", "DATABASE_URL", VALUE, "ops");
  db.close();
  const again = reopen();
  t.deepEqual(new SecretStore(again, loadOrCreateSecretsKey(dir)).values("geoip"), { DATABASE_URL: VALUE });
});
