import test from "ava";
import { createLogger } from "@cutover/log";
import { postgresMissing, startPostgres, type PostgresCluster } from "@cutover/testkit";
import { LockStore } from "../store/locks.js";
import { LeaseTable, type LeaseHolder } from "../store/lease.js";
import { FencedOut, PostgresDb } from "../store/postgres.js";
import { ClusterLeadership, DEFAULT_LEASE_TIMERS } from "./cluster-leadership.js";

const missing = postgresMissing();
let cluster: PostgresCluster | undefined;
test.after.always(() => cluster?.stop());
// The tests share one cluster (a database each) and run one at a time: each starts it if none is up.

function member(url: string, id: string, events: { leads: number[]; deposed: (LeaseHolder | undefined)[] }) {
  const db = PostgresDb.connect(url);
  const log = createLogger("test", { level: "error" });
  const leadership = new ClusterLeadership(db, new LeaseTable(db, id, DEFAULT_LEASE_TIMERS.leaseTtlMs), { id, apiUrl: `http://${id}`, agentUrl: `ws://${id}/v1/agent`, version: "test", keysId: "k" }, DEFAULT_LEASE_TIMERS, log, {
    lead: (epoch) => events.leads.push(epoch),
    deposed: (holder) => events.deposed.push(holder),
  });
  return { db, leadership };
}

/** Resolves once `check` holds, asking every 100 ms (the lease's expiry is on the database's clock: there is no event to await). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 100));
}

if (missing) {
  test.skip(`cluster leadership on PostgreSQL: skipped, ${missing}`, () => {});
} else {
  test.serial("a paused leader loses its lease to a follower under the next epoch; once it wakes it may not act, its writes are fenced, and its next tick deposes it", async (t) => {
    cluster ??= await startPostgres();
    const url = cluster.createDatabase();
    const aEvents = { leads: [] as number[], deposed: [] as (LeaseHolder | undefined)[] };
    const bEvents = { leads: [] as number[], deposed: [] as (LeaseHolder | undefined)[] };
    const a = member(url, "a:1", aEvents);
    const b = member(url, "b:1", bEvents);
    t.teardown(() => {
      a.leadership.stop();
      b.leadership.stop();
      a.db.close();
      b.db.close();
    });
    a.leadership.start();
    b.leadership.start();
    t.deepEqual(aEvents.leads, [1], "the first member takes the free lease under epoch 1");
    t.true(a.leadership.isLeader());
    t.false(b.leadership.isLeader());
    t.deepEqual(b.leadership.members().sort(), ["ws://a:1/v1/agent", "ws://b:1/v1/agent"]);
    t.like(new LockStore(a.db).acquire("web", "ops", "while leading"), { acquired: true }, "the leader writes");
    t.throws(() => new LockStore(b.db).acquire("api", "ops", "as a follower"), { instanceOf: FencedOut }, "a follower writes nothing");

    // Paused: a's timer stops, as SIGSTOP would stop it; b takes over once the lease expires.
    a.leadership.stop();
    await until(() => bEvents.leads.length > 0);
    t.deepEqual(bEvents.leads, [2], "the takeover raises the epoch");
    t.false(a.leadership.isLeader(), "past its lease on its own clock the old leader does not act, before it has even learnt of the takeover");
    t.throws(() => new LockStore(a.db).release("web"), { instanceOf: FencedOut }, "its write under epoch 1 is refused");
    t.like(new LockStore(b.db).get("web"), { holder: "ops" }, "and nothing of it landed");
    t.true(b.leadership.isLeader());

    // Woken: its timer runs again, and its first tick finds epoch 2.
    a.leadership.start();
    t.is(a.leadership.currentRole, "deposed");
    t.like(aEvents.deposed[0], { holder: "b:1", epoch: 2 });
    t.is(b.leadership.leaderAgentUrl(), undefined, "b leads: no other leader to name");
    t.is(a.leadership.leaderAgentUrl(), "ws://b:1/v1/agent");
  });
}

if (!missing) {
  test.serial("a member restarted on its own address takes its old lease over at once, under the next epoch", async (t) => {
    cluster ??= await startPostgres();
    const url = cluster.createDatabase();
    const first = member(url, "c:1", { leads: [], deposed: [] });
    first.leadership.start();
    t.true(first.leadership.isLeader());
    first.leadership.stop(); // killed: its lease has most of its 10 s left
    const events = { leads: [] as number[], deposed: [] as (LeaseHolder | undefined)[] };
    const again = member(url, "c:1", events);
    const other = member(url, "d:1", { leads: [], deposed: [] });
    t.teardown(() => {
      again.leadership.stop();
      other.leadership.stop();
      for (const db of [first.db, again.db, other.db]) db.close();
    });
    other.leadership.start();
    t.false(other.leadership.isLeader(), "another member waits for the lease to expire");
    again.leadership.start();
    t.deepEqual(events.leads, [2], "the process now on c:1 need not wait: the holder of record was an earlier process on its address");
    t.throws(() => new LockStore(first.db).acquire("web", "ops", "from the dead process"), { instanceOf: FencedOut });
  });
}
