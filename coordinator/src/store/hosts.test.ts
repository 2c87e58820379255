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
  return { hosts, ids, other: new HostStore(reopen()) };
}

bothEngines("a heartbeat's figures are read back at once, and reach the store for every host in one write a moment later", (t, engine) => {
  // More hosts than one statement takes, so the write spans several.
  const { hosts, ids, other } = enrolled(t, engine, 600);
  ids.forEach((id, i) => hosts.report(id, resources(i % 100), [{ app: "geo", release: "v1", color: "blue", port: 7001, state: "running", pid: 100 + i, live: true, rssBytes: 1e6 }]));
  t.like(hosts.byId(ids[599]!), { resources: { cpuLoadPercent: 99 }, lastSeen: NOW });
  t.is(hosts.list().filter((h) => h.resources !== null).length, 600, "this coordinator reads what it has not written yet");
  t.is(other.list().filter((h) => h.resources !== null).length, 0, "nothing written before the write");

  hosts.writeReports();
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
