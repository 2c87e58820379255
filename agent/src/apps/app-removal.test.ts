// AppManager.remove over the fakes (test-fakes.ts): what `cutover apps remove` does on one host.
import test from "ava";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { appDefinitionOf } from "./definition.js";
import { codedError, fakeAgent, FakeHost, OK, stateDirFor } from "./test-fakes.js";

const WIRE = { name: "geoip", bluePort: 7001, greenPort: 7002, proxy: { listenPort: 8080 }, run: { command: ["node", "server.mjs"] }, keepPreviousMs: 60_000 };
const deployOf = (release: string) => ({ app: WIRE, release, artifact: { sha256: "ab".repeat(32) } });

test("remove: the site goes first, then both colors (live and warm), then the saved state; nothing is reported for the app afterwards", async (t) => {
  const host = new FakeHost(appDefinitionOf(WIRE));
  const stateDir = stateDirFor(t);
  const agent = fakeAgent(host, stateDir);
  t.like(await agent.manager.deploy("c1", deployOf("v1")), { status: OK });
  t.like(await agent.manager.deploy("c2", deployOf("v2")), { status: OK });
  t.deepEqual([...host.processes.keys()].sort(), ["geoip/blue", "geoip/green"]);

  const removal = await agent.manager.remove("geoip");
  t.deepEqual(removal, { stoppedColors: ["blue", "green"], siteRemoved: true, stateRemoved: true });
  t.deepEqual(host.violations, [], "no color was stopped while the proxy still served it");
  t.is(host.processes.size, 0);
  t.false(host.serving.has("geoip"));
  t.false(existsSync(join(stateDir, "apps", "geoip")));
  t.deepEqual(agent.manager.instances(), []);
  t.is(agent.manager.snapshot("geoip"), undefined);
});

test("remove: an app this host does not have is already removed; an invalid name is refused before anything is touched", async (t) => {
  const host = new FakeHost(appDefinitionOf(WIRE));
  const agent = fakeAgent(host, stateDirFor(t));
  t.deepEqual(await agent.manager.remove("other"), { stoppedColors: [], siteRemoved: false, stateRemoved: false });
  const refused = await t.throwsAsync(agent.manager.remove("../etc"));
  t.is((refused as { code?: string }).code, "ERR_INVALID_APP");
});

test("remove: a site that cannot be removed (nginx -t fails without it) fails the removal with the app still running and served", async (t) => {
  const host = new FakeHost(appDefinitionOf(WIRE));
  const stateDir = stateDirFor(t);
  const agent = fakeAgent(host, stateDir);
  t.like(await agent.manager.deploy("c1", deployOf("v1")), { status: OK });
  host.failNext.set("switch", codedError("ERR_NGINX_TEST_FAILED", "nginx -t failed"));
  await t.throwsAsync(agent.manager.remove("geoip"), { message: /nginx -t failed/ });
  t.deepEqual([...host.processes.keys()], ["geoip/blue"]);
  t.is(host.serving.get("geoip"), 7001);
  t.true(existsSync(join(stateDir, "apps", "geoip", "state.json")));
});
