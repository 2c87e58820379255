import { bothEngines, openTestStore, type Engine } from "./engines.testing.js";
import test from "ava";
import { postgresMissing } from "@cutover/testkit";
import { DeploymentStore } from "./deployments.js";
import { FencedOut, type PostgresDb } from "./postgres.js";

function store(t: { teardown(fn: () => void): void }, engine: Engine) {
  const { db } = openTestStore(t, engine);
  let now = 1_000;
  const deployments = new DeploymentStore(db, () => now);
  return { deployments, advance: (ms: number) => (now += ms), now: () => now };
}

bothEngines("a host may fetch an artifact once a step of a deployment of it was sent to it, and for a grace after the deployment ends", (t, engine) => {
  const { deployments, advance, now } = store(t, engine);
  const d = deployments.create({ app: "geoip", kind: "deploy", release: "v1", strategy: "bluegreen", spec: {}, artifactSha256: "aa", createdBy: "t", hosts: [{ name: "web-1", batch: 0 }, { name: "web-2", batch: 1 }] });
  t.false(deployments.sentArtifact("web-1", "aa", 0), "planned is not sent");
  deployments.updateHost(d.id, "web-1", { state: "running", commandId: "c1" });
  t.true(deployments.sentArtifact("web-1", "aa", 0));
  t.false(deployments.sentArtifact("web-2", "aa", 0), "a host of a later batch, not sent yet");
  t.false(deployments.sentArtifact("other", "aa", 0), "a host outside the deployment");
  t.false(deployments.sentArtifact("web-1", "bb", 0), "another artifact");
  deployments.transition(d.id, "succeeded");
  const finished = now();
  advance(60_000);
  t.true(deployments.sentArtifact("web-1", "aa", finished), "within the grace");
  t.false(deployments.sentArtifact("web-1", "aa", finished + 1), "after it");
});

bothEngines("a turn's host steps and events are read back at once, written together, and the events reach subscribers numbered", async (t, engine) => {
  const { deployments } = store(t, engine);
  const hosts = Array.from({ length: 450 }, (_, i) => ({ name: `web-${i}`, batch: 1 }));
  const d = deployments.create({ app: "geoip", kind: "deploy", release: "v2", strategy: "bluegreen", spec: {}, createdBy: "t", hosts });
  const seen: number[] = [];
  deployments.subscribe(d.id, (event) => seen.push(event.id));
  for (const host of hosts) {
    deployments.updateHost(d.id, host.name, { state: "running", commandId: `c-${host.name}` });
    deployments.addEvent(d.id, host.name, "step", "booting");
  }
  deployments.updateHost(d.id, "web-7", { state: "succeeded", switchMs: 1.5, finishedAt: 2_000 });
  t.like(deployments.host(d.id, "web-7"), { state: "succeeded", commandId: "c-web-7", switchMs: 1.5 }, "read back before it is written");
  t.deepEqual(seen, [], "subscribers hear of an event once it is stored");
  await deployments.written();
  t.is(seen.length, 450);
  t.true(seen.every((id, i) => i === 0 || id === seen[i - 1]! + 1), "numbered in order");
  const rows = deployments.hosts(d.id);
  t.is(rows.filter((h) => h.state === "running").length, 449);
  t.like(rows.find((h) => h.hostName === "web-7"), { state: "succeeded", commandId: "c-web-7", switchMs: 1.5, finishedAt: 2_000 });
  const last = seen.at(-1)!;
  deployments.addEvent(d.id, null, "note", "after");
  const events = deployments.events(d.id, last);
  t.deepEqual(events.map((e) => [e.id, e.message]), [[last + 1, "after"]], "reading events writes the queued ones first");
  t.is(seen.at(-1), last + 1, "and hands them to the subscribers");
});

bothEngines("a deployment's state is written after the host steps queued before it", (t, engine) => {
  const { db } = openTestStore(t, engine);
  const deployments = new DeploymentStore(db);
  const d = deployments.create({ app: "geoip", kind: "deploy", release: "v2", strategy: "bluegreen", spec: {}, createdBy: "t", hosts: [{ name: "web-1", batch: 1 }] });
  deployments.updateHost(d.id, "web-1", { state: "succeeded" });
  deployments.transition(d.id, "succeeded");
  // Another reader of the same store (a follower, a restarted coordinator) never sees a succeeded deployment with a running host.
  const other = new DeploymentStore(db);
  t.is(other.get(d.id)!.state, "succeeded");
  t.is(other.host(d.id, "web-1")!.state, "succeeded");
});

const missing = postgresMissing();
(missing ? test.skip : test)(`[postgres] a queued write that is refused is kept, and written once it can be${missing ? ` (skipped: ${missing})` : ""}`, async (t) => {
  const { db } = openTestStore(t, "postgres");
  const deployments = new DeploymentStore(db);
  const d = deployments.create({ app: "geoip", kind: "deploy", release: "v2", strategy: "bluegreen", spec: {}, createdBy: "t", hosts: [{ name: "web-1", batch: 1 }] });
  (db as PostgresDb).unfenced("UPDATE coordinator_lease SET epoch = 2");
  deployments.updateHost(d.id, "web-1", { state: "running", commandId: "c1" });
  deployments.addEvent(d.id, "web-1", "step", "booting");
  await t.throwsAsync(deployments.written(), { instanceOf: FencedOut }, "whoever waits to act on it is told");
  (db as PostgresDb).unfenced("UPDATE coordinator_lease SET epoch = 1");
  deployments.flush();
  t.like(new DeploymentStore(db).host(d.id, "web-1"), { state: "running", commandId: "c1" });
  t.deepEqual(deployments.events(d.id).map((e) => e.message), ["booting"]);
});
