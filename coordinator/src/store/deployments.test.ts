import { bothEngines, openTestStore, type Engine } from "./engines.testing.js";
import { DeploymentStore } from "./deployments.js";

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
