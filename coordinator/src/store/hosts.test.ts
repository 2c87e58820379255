import { bothEngines, openTestStore, type Engine } from "./engines.testing.js";
import { HostStore, type HostResources } from "./hosts.js";

const NOW = 1_700_000_000_000;

function resources(load: number): HostResources {
  return { cpuLoadPercent: load, memTotalBytes: 8e9, memAvailableBytes: 4e9, diskFreeBytes: 1e10, diskTotalBytes: 2e10, diskPath: "/", loadAverage1m: 1, loadAverage5m: 1, loadAverage15m: 1, cpuCount: 2, sampledAt: NOW };
}

/** A distinct 32-byte key per host. */
function publicKey(i: number): Buffer {
  const key = Buffer.alloc(32);
  key.writeUInt32BE(i);
  return key;
}

function enrolled(t: { teardown(fn: () => void): void }, engine: Engine, count: number) {
  const { db, reopen } = openTestStore(t, engine);
  const hosts = new HostStore(db, () => NOW);
  const ids = Array.from({ length: count }, (_, i) => hosts.enroll(`web-${i}`, publicKey(i), { labels: {}, address: `127.0.0.${(i % 250) + 1}` }).id);
  const otherDb = reopen();
  return { hosts, ids, other: new HostStore(otherDb), otherDb };
}

bothEngines("a heartbeat's figures are read back at once, and reach the store for every host in one write a moment later", (t, engine) => {
  // More hosts than one statement takes, so the write spans several.
  const { hosts, ids, other } = enrolled(t, engine, 600);
  ids.forEach((id, i) => hosts.report(id, resources(i % 100), [{ app: "geo", release: "v1", color: "blue", port: 7001, state: "running", pid: 100 + i, live: true, rssBytes: 1e6 }]));
  t.like(hosts.byId(ids[599]!), { resources: { cpuLoadPercent: 99 }, lastSeen: NOW });
  t.is(hosts.list().filter((h) => h.resources !== null).length, 600, "this coordinator reads what it has not written yet");
  t.is(other.list().filter((h) => h.resources !== null).length, 0, "nothing written before the write");

  hosts.writeReports();
  hosts.byId(ids[0]!); // a statement on the writer's connection runs after the write, which it did not wait for
  const stored = other.list();
  t.is(stored.filter((h) => h.lastSeen === NOW).length, 600);
  t.like(other.byName("web-342"), { resources: { cpuLoadPercent: 42 }, instances: [{ app: "geo", pid: 442 }] });
});

bothEngines("a removed host's unwritten figures are dropped with it", (t, engine) => {
  const { hosts, ids, other } = enrolled(t, engine, 2);
  hosts.report(ids[0]!, resources(5), []);
  hosts.remove(ids[0]!, "ops");
  hosts.writeReports();
  t.is(hosts.byId(ids[0]!), undefined);
  t.deepEqual(other.list().map((h) => h.name), ["web-1"]);
});

bothEngines("a Hello that says what the record says writes nothing; one that differs is written, its new ask returned once", (t, engine) => {
  const { hosts, ids, other } = enrolled(t, engine, 1);
  const intro = { address: "127.0.0.1", hostname: "web-0.local", labels: {}, capabilities: ["commands.mac"], agentVersion: "1.0.0" };
  t.is(hosts.introduce(hosts.byId(ids[0]!)!, intro).change, undefined);
  t.like(other.byId(ids[0]!), { hostname: "web-0.local", agentVersion: "1.0.0" }, "the first Hello is written");
  other.setLabels(ids[0]!, { role: "edge" }); // changed behind this store's back: a Hello that matches the old record must not touch it
  const { host } = hosts.introduce({ ...hosts.byId(ids[0]!)!, labels: {} }, intro);
  t.deepEqual(other.byId(ids[0]!)!.labels, { role: "edge" });
  t.is(host.lastSeen, NOW, "seen, with the figures' write");
  const asked = hosts.introduce(hosts.byId(ids[0]!)!, { ...intro, labels: { role: "db" } });
  t.deepEqual(asked.change, { labels: { role: "db" } });
  t.deepEqual(other.byId(ids[0]!)!.pendingLabels, { role: "db" });
  t.is(hosts.introduce(hosts.byId(ids[0]!)!, { ...intro, labels: { role: "db" } }).change, undefined, "the same ask again is not a new change");
  hosts.writeReports();
  hosts.byId(ids[0]!); // after the write, on its connection
  t.is(other.byId(ids[0]!)!.lastSeen, NOW);
});

bothEngines("command sequences only go up, across a restart too, with one write a window for every host that takes signed commands", (t, engine) => {
  const { hosts, ids, other, otherDb } = enrolled(t, engine, 3);
  const intro = { address: "", hostname: "h", labels: {}, agentVersion: "1.0.0" };
  hosts.introduce(hosts.byId(ids[2]!)!, { ...intro, capabilities: ["commands.mac"] });
  const stored = (i: number) => (otherDb.prepare("SELECT command_sequence FROM hosts WHERE id = ?").get(ids[i]) as { command_sequence: number }).command_sequence;
  const first = hosts.nextSequence(ids[0]!);
  const top = stored(0);
  const more = Array.from({ length: 50 }, () => hosts.nextSequence(ids[0]!));
  t.true(first >= (Date.now() - 1000) * 1000, "at least the wall clock in µs");
  t.true([first, ...more].every((s, i, all) => i === 0 || s > all[i - 1]!), "each above the last");
  t.true(more.at(-1)! <= top);
  t.is(stored(2), 0, "a host on session keys reserves none");
  const otherTop = stored(1);
  t.true(otherTop > 0, "the other signed host's window came with the same write");
  t.true(hosts.nextSequence(ids[1]!) <= otherTop);
  t.is(stored(0), top, "one write reserved them all");
  t.is(stored(1), otherTop);
  t.true(other.nextSequence(ids[0]!) > top, "another store (a restart, a new leader) starts above the reserved window");
});
