import test from "ava";
import { bothEngines, openTestStore, type Engine } from "./engines.testing.js";
import { describeLock, LockStore } from "./locks.js";

function store(t: { teardown(fn: () => void): void }, engine: Engine, now = () => 1_700_000_000_000) {
  const { db, reopen } = openTestStore(t, engine);
  return { locks: new LockStore(db, now), reopen, db };
}

bothEngines("a free app is locked by the first caller; every later acquire, its holder's too, answers the lock held", (t, engine) => {
  const { locks } = store(t, engine);
  const first = locks.acquire("web", "ops", "db migration");
  t.deepEqual(first, { acquired: true, lock: { app: "web", holder: "ops", reason: "db migration", acquiredAt: 1_700_000_000_000 } });
  t.deepEqual(locks.acquire("web", "ci", "nightly"), { acquired: false, held: first.acquired ? first.lock : undefined! });
  t.false(locks.acquire("web", "ops", "again").acquired, "not re-entrant");
  t.true(locks.acquire("api", "ci", "nightly").acquired, "locks are per app");
  t.deepEqual(locks.list().map((l) => [l.app, l.holder]), [["api", "ci"], ["web", "ops"]]);
});

bothEngines("release answers the lock it removed, then the app is free; releasing a free app answers null", (t, engine) => {
  const { locks } = store(t, engine);
  locks.acquire("web", "ops", "db migration");
  t.like(locks.release("web"), { app: "web", holder: "ops", reason: "db migration" });
  t.is(locks.get("web"), null);
  t.is(locks.release("web"), null);
  t.true(locks.acquire("web", "ci", "next").acquired);
});

bothEngines("a lock outlives the coordinator: it is in the store, not in memory", (t, engine) => {
  const { locks, reopen, db } = store(t, engine);
  locks.acquire("web", "ops", "freeze");
  db.close();
  const reopened = reopen();
  t.like(new LockStore(reopened).get("web"), { holder: "ops", reason: "freeze" });
});

test("a refusal names the app, the holder, since when and why", (t) => {
  t.is(describeLock({ app: "web", holder: "ops", reason: "db migration", acquiredAt: Date.UTC(2026, 11, 2, 9, 0) }), 'web is locked by ops since 2026-12-02T09:00:00.000Z: "db migration"');
});
