import { enrollmentTokenKeyId } from "@cutover/protocol";
import { bothEngines, openTestStore, type Engine } from "./engines.testing.js";
import { TokenStore } from "./tokens.js";

const KEY_ID = "k".repeat(43);
const HOUR = 60 * 60 * 1000;

function store(t: { teardown(fn: () => void): void }, engine: Engine) {
  const { db } = openTestStore(t, engine);
  let now = Date.UTC(2026, 0, 1);
  return { tokens: new TokenStore(db, { coordinatorKeyId: KEY_ID, now: () => now }), advance: (ms: number) => (now += ms) };
}

bothEngines("an API token with an expiry works until then and is refused as expired after, naming whose it was", (t, engine) => {
  const { tokens, advance } = store(t, engine);
  const { token, record, expiresAt } = tokens.createApiToken("ci", "deploy", HOUR);
  t.deepEqual(tokens.checkApiToken(token), { ok: true, record });
  advance(HOUR);
  t.deepEqual(tokens.checkApiToken(token), { ok: false, reason: "expired", record, at: expiresAt! });
  t.deepEqual(tokens.checkApiToken("cta_never-issued"), { ok: false, reason: "unknown" });
});

bothEngines("a revoked API token is refused as revoked; the list shows it revoked, by whom, and never a secret", (t, engine) => {
  const { tokens } = store(t, engine);
  tokens.createApiToken("admin", "admin");
  const { token, record } = tokens.createApiToken("ci", "deploy");
  t.like(tokens.revoke(record.id, "admin"), { ok: true, token: { id: record.id, state: "revoked", revokedBy: "admin" } });
  t.like(tokens.checkApiToken(token), { ok: false, reason: "revoked", record });
  t.like(tokens.revoke(record.id, "admin"), { ok: false, reason: "already-revoked" });
  t.false(JSON.stringify(tokens.list()).includes(token.slice(4)), "no secret in the list");
  t.deepEqual(Object.keys(tokens.list()[0]!).sort(), ["address", "createdAt", "expiresAt", "id", "kind", "labels", "name", "revokedAt", "revokedBy", "role", "state", "usedAt", "usedBy"]);
});

bothEngines("the last admin token that works cannot be revoked", (t, engine) => {
  const { tokens } = store(t, engine);
  const first = tokens.createApiToken("admin", "admin");
  t.like(tokens.revoke(first.record.id, "admin"), { ok: false, reason: "last-admin" });
  const second = tokens.createApiToken("admin-2", "admin");
  t.like(tokens.revoke(first.record.id, "admin-2"), { ok: true });
  t.like(tokens.revoke(second.record.id, "admin-2"), { ok: false, reason: "last-admin" });
});

bothEngines("an enrollment token names the coordinator key, carries the identity it binds, and is refused once revoked", (t, engine) => {
  const { tokens } = store(t, engine);
  const bound = tokens.createEnrollmentToken(HOUR, { labels: { role: "geoip" }, address: "10.0.0.5" });
  t.is(enrollmentTokenKeyId(bound.token), KEY_ID);
  t.deepEqual(tokens.checkEnrollmentToken(bound.token), { ok: true, id: bound.id, labels: { role: "geoip" }, address: "10.0.0.5" });
  const free = tokens.createEnrollmentToken(HOUR);
  t.deepEqual(tokens.checkEnrollmentToken(free.token), { ok: true, id: free.id, labels: undefined, address: undefined });
  t.like(tokens.revoke(free.id, "admin"), { ok: true, token: { kind: "enrollment", state: "revoked" } });
  t.deepEqual(tokens.checkEnrollmentToken(free.token), { ok: false, reason: "revoked" });
  t.false(tokens.spendEnrollmentToken(free.id, "host-1"), "a revoked token cannot be spent");
});

bothEngines("a spent enrollment token is not revoked (it would change nothing) and lists who used it", (t, engine) => {
  const { tokens, advance } = store(t, engine);
  const { token, id } = tokens.createEnrollmentToken(HOUR);
  t.true(tokens.spendEnrollmentToken(id, "host-id-1"));
  t.like(tokens.revoke(id, "admin"), { ok: false, reason: "used" });
  t.like(tokens.list().find((v) => v.id === id), { state: "used", usedBy: "host-id-1" });
  t.deepEqual(tokens.checkEnrollmentToken(token), { ok: false, reason: "used" });
  const late = tokens.createEnrollmentToken(HOUR);
  advance(HOUR);
  t.like(tokens.list().find((v) => v.id === late.id), { state: "expired" });
});
