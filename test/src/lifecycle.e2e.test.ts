// Host and app lifecycle on a real fleet (coordinator, agents, nginx, a front load balancer):
// `cutover hosts cordon/uncordon` and `cutover apps remove`, checked as an operator checks them.
import test from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { appProcessesUnder, hostProcesses } from "./harness/host-processes.js";
import { CUTOVER_BIN, spawnWatched } from "./harness/processes.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";

const APP_PORTS = { listen: 8080, blue: 7001, green: 7002 };
const LB_LISTEN = 8090;
const REQUESTS = 30;
/** Time for the apps' log lines of answered requests to reach their files. */
const LOG_SETTLE_MS = 500;

interface DeployJson {
  status: string;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

interface HostJson {
  name: string;
  cordoned: { by: string; reason: string; at: string } | null;
}

/** Requests for the geoip API each app host's instances logged (both colors): how many users its proxy passed on. */
function apiRequestsLogged(fleet: Fleet): number[] {
  return fleet.agents.map((agent) => {
    const dir = join(agent.options.stateDir, "logs", "geoip");
    if (!existsSync(dir)) return 0;
    return readdirSync(dir)
      .filter((f) => f.endsWith(".log"))
      .reduce((sum, f) => sum + readFileSync(join(dir, f), "utf8").split("\n").filter((l) => l.includes(" GET /api/v1/geoip/1.2.3.4 ")).length, 0);
  });
}

/**
 * `count` new users through the front load balancer: which versions they got, and which
 * host served them, counted in the hosts' app logs (the app logs each request it answers).
 */
async function throughLb(fleet: Fleet, count = REQUESTS): Promise<{ hosts: Record<string, number>; versions: Record<string, number> }> {
  const before = apiRequestsLogged(fleet);
  const versions: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const answer = await getThroughProxy(fleet.lbAddresses[0]!, LB_LISTEN);
    const key = answer.status === 200 ? String(answer.version) : `status ${answer.status}`;
    versions[key] = (versions[key] ?? 0) + 1;
  }
  await sleep(LOG_SETTLE_MS);
  const after = apiRequestsLogged(fleet);
  const hosts: Record<string, number> = {};
  after.forEach((n, i) => {
    if (n > before[i]!) hosts[`web-${i + 1}`] = n - before[i]!;
  });
  return { hosts, versions };
}

async function hostsState(fleet: Fleet, name: string): Promise<string | undefined> {
  return (await fleet.coordinator.cliJson<{ name: string; state: string }[]>(["hosts"])).json.find((h) => h.name === name)?.state;
}

async function hostsJson(fleet: Fleet): Promise<HostJson[]> {
  const listed = await fleet.coordinator.cliJson<HostJson[]>(["hosts"]);
  return listed.json;
}

test.serial("cordon: a rolling deploy of v2 leaves the cordoned host on v1 and names it, the load balancer sends it nobody throughout; uncordon puts it back in", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, lbHosts: 1 });
  // Rolling: every batch applies the upstream again, with "every host up"; the cordoned one must stay out all the same.
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, strategy: { type: "rolling" } });
  const v1 = await fleet.coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  const before = await throughLb(fleet);
  t.log(`before the cordon, through the load balancer: ${JSON.stringify(before)}`);
  t.deepEqual(Object.keys(before.hosts).sort(), ["web-1", "web-2", "web-3"], "every host takes users");

  const cordon = await fleet.coordinator.cli(["hosts", "cordon", "web-2", "-m", "disk swap"]);
  t.is(cordon.exitCode, 0, cordon.stderr);
  t.regex(cordon.stdout, /web-2 cordoned by admin/);
  t.regex(cordon.stdout, /geoip at lb-1: drained/);
  const listed = await hostsJson(fleet);
  t.like(listed.find((h) => h.name === "web-2")!.cordoned, { by: "admin", reason: "disk swap" });
  t.true(Number.isFinite(Date.parse(listed.find((h) => h.name === "web-2")!.cordoned!.at)));
  t.deepEqual(listed.filter((h) => h.name !== "web-2").map((h) => h.cordoned), [null, null, null], "lb-1, web-1, web-3 are not cordoned");
  const table = await fleet.coordinator.cli(["hosts"]);
  t.regex(table.stdout, /CORDONED/);
  t.regex(table.stdout.split("\n").find((l) => l.startsWith("web-2")) ?? "", /by admin .*: disk swap/);
  const cordoned = await throughLb(fleet);
  t.log(`cordoned web-2, through the load balancer: ${JSON.stringify(cordoned)}`);
  t.is(cordoned.hosts["web-2"], undefined, "the load balancer sends web-2 no request");
  t.is((cordoned.hosts["web-1"] ?? 0) + (cordoned.hosts["web-3"] ?? 0), REQUESTS);

  // Users through the load balancer all along the deploy: none fails, none reaches web-2.
  const loggedBefore = apiRequestsLogged(fleet);
  const load = loadThroughProxies(t, fleet.lbAddresses, LB_LISTEN, { retry: true, concurrency: 2 });
  await load.completed(20);
  const v2 = await fleet.coordinator.cliJson<DeployJson>(["deploy", spec, "--release", "v2"]);
  t.is(v2.exitCode, 0, v2.stderr);
  await load.completed(20);
  for (const report of await Promise.all(load.runs.map((r) => r.stop()))) {
    t.log(`through the load balancer during the deploy: ${report.requests} requests, ${report.failed} failed, answers ${JSON.stringify(report.answers)}`);
    t.deepEqual(report.failures, [], "no failed request through the load balancer");
  }
  await sleep(LOG_SETTLE_MS);
  t.is(apiRequestsLogged(fleet)[1], loggedBefore[1], "web-2 got no request during the deploy");
  t.is(v2.json.status, "succeeded");
  t.deepEqual(v2.json.hosts.map((h) => [h.name, h.outcome, h.release]), [
    ["web-2", "skipped", null],
    ["web-1", "succeeded", "v2"],
    ["web-3", "succeeded", "v2"],
  ], "the host left out first (batch 0), then the batches");
  t.regex(v2.json.hosts.find((h) => h.name === "web-2")!.error ?? "", /^cordoned by admin at .*: "disk swap"$/);
  const afterDeploy = await throughLb(fleet);
  t.deepEqual(afterDeploy.versions, { v2: REQUESTS }, "users get v2 only: web-2 (v1) stays out of the load balancer after the deploy");
  t.is(afterDeploy.hosts["web-2"], undefined);
  // Asked directly (after the counts above: its log line must not land in them).
  t.is((await getThroughProxy(fleet.addresses[1]!, APP_PORTS.listen)).version, "v1", "web-2 keeps v1");

  // Mid-deploy: refused, naming the deployment, with nothing changed.
  // v3 boots in 3 s on each host: its deployment is still in progress when the pause below reaches it.
  const slow = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, appArgs: ["--slow-start", "3000"], strategy: { type: "rolling" } }, "slow.yml");
  const deploying = spawnWatched("deploy v3", CUTOVER_BIN, ["deploy", slow, "--release", "v3"], { CUTOVER_URL: fleet.coordinator.url, CUTOVER_TOKEN: fleet.coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent" });
  await deploying.waitForLine(/batch 1\/2: web-1/);
  // Paused, it stays in progress for as long as the checks below take.
  t.is((await fleet.coordinator.cli(["pause", "geoip"])).exitCode, 0);
  const midDeploy = await fleet.coordinator.cli(["hosts", "cordon", "web-3"]);
  t.is(midDeploy.exitCode, 75, midDeploy.stderr);
  t.regex(midDeploy.stderr, /web-3 is in geoip's deploy [0-9a-f-]+ \((running|paused)\); nothing was changed/);
  const uncordonMid = await fleet.coordinator.cli(["hosts", "uncordon", "web-2"]);
  t.is(uncordonMid.exitCode, 75, uncordonMid.stderr);
  t.is((await fleet.coordinator.cli(["resume", "geoip"])).exitCode, 0);
  t.is((await deploying.exited).code, 0);
  t.is((await hostsJson(fleet)).find((h) => h.name === "web-3")!.cordoned, null);

  const uncordon = await fleet.coordinator.cli(["hosts", "uncordon", "web-2"]);
  t.is(uncordon.exitCode, 0, uncordon.stderr);
  t.regex(uncordon.stdout, /web-2 uncordoned/);
  t.regex(uncordon.stdout, /geoip at lb-1: back up/);
  t.regex(uncordon.stdout, /deploy again to bring it up to date/);
  t.is((await hostsJson(fleet)).find((h) => h.name === "web-2")!.cordoned, null);
  const back = await throughLb(fleet);
  t.log(`uncordoned web-2, through the load balancer: ${JSON.stringify(back)}`);
  t.true((back.hosts["web-2"] ?? 0) > 0, "web-2 takes users again");
  t.true((back.versions["v1"] ?? 0) > 0 && (back.versions["v3"] ?? 0) > 0, "web-2 still serves v1 until the next deploy");
  const again = await fleet.coordinator.cli(["hosts", "uncordon", "web-2"]);
  t.is(again.exitCode, 65, "uncordoning a host that is not cordoned is refused");
  t.regex(again.stderr, /ERR_NOT_CORDONED|not cordoned/);
});

/** Files under the agent's managed nginx that name the app (its site, its LB site). */
function siteFilesOf(stateDir: string, app: string): string[] {
  const root = join(stateDir, "nginx");
  if (!existsSync(root)) return [];
  return (readdirSync(root, { recursive: true }) as string[]).filter((f) => f.endsWith(".conf") && f.includes(app));
}

test.serial("apps remove: refused while locked, without --yes off a terminal, and with a host unreachable; then no process, site or port is left on any host, status says unknown, history stays", async (t) => {
  const fleet = await startFleet(t, { hosts: 2, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN });
  for (const release of ["v1", "v2"]) {
    const deployed = await fleet.coordinator.cli(["deploy", spec, "--release", release]);
    t.is(deployed.exitCode, 0, deployed.stderr);
  }
  const running = () => fleet.agents.map((a) => hostProcesses(a.options.stateDir).filter((p) => p.kind === "instance").map((p) => p.label).sort());
  t.deepEqual(running(), [["geoip/blue", "geoip/green"], ["geoip/blue", "geoip/green"]], "v2 live, v1 warm on every host");
  t.true(siteFilesOf(fleet.lbAgents[0]!.options.stateDir, "geoip").length > 0, "the load balancer has the app's site");

  t.is((await fleet.coordinator.cli(["lock", "acquire", "geoip", "-m", "freeze"])).exitCode, 0);
  const locked = await fleet.coordinator.cli(["apps", "remove", "geoip", "--yes"]);
  t.is(locked.exitCode, 75, locked.stderr);
  t.regex(locked.stderr, /geoip is locked by admin since .*: "freeze"/);
  t.deepEqual(running(), [["geoip/blue", "geoip/green"], ["geoip/blue", "geoip/green"]], "nothing was removed");
  t.is((await fleet.coordinator.cli(["lock", "release", "geoip"])).exitCode, 0);

  const unasked = await fleet.coordinator.cli(["apps", "remove", "geoip"]);
  t.is(unasked.exitCode, 64, unasked.stderr);
  t.regex(unasked.stderr, /pass --yes/);
  t.is((await getThroughProxy(fleet.addresses[0]!, APP_PORTS.listen)).version, "v2", "still serving");

  // A host that cannot be cleaned now: the removal is refused naming it, and nothing is removed anywhere.
  const web2 = fleet.agents[1]!;
  await web2.process.kill("SIGKILL");
  for (let i = 0; (await hostsState(fleet, "web-2")) !== "unreachable"; i++) {
    if (i > 50) t.fail("web-2 never showed unreachable");
    await sleep(200);
  }
  const offline = await fleet.coordinator.cli(["apps", "remove", "geoip", "--yes"]);
  t.is(offline.exitCode, 75, offline.stderr);
  t.regex(offline.stderr, /cannot remove geoip: web-2 is unreachable and would keep running it; nothing was removed/);
  t.deepEqual(running(), [["geoip/blue", "geoip/green"], ["geoip/blue", "geoip/green"]], "nothing was removed, on web-1 either");
  t.is((await getThroughProxy(fleet.lbAddresses[0]!, LB_LISTEN)).version, "v2", "the load balancer still serves it");
  web2.start();
  await web2.online();

  const removed = await fleet.coordinator.cliJson<{ app: string; removed: boolean; hosts: { name: string; role: string; ok: boolean; stoppedColors: string[]; siteRemoved: boolean; lbSiteRemoved: boolean }[] }>(["apps", "remove", "geoip", "--yes"]);
  t.is(removed.exitCode, 0, removed.stderr);
  t.true(removed.json.removed);
  t.deepEqual(removed.json.hosts.map((h) => [h.name, h.role, h.ok, h.stoppedColors, h.siteRemoved, h.lbSiteRemoved]), [
    ["lb-1", "lb", true, [], false, true],
    ["web-1", "app", true, ["blue", "green"], true, false],
    ["web-2", "app", true, ["blue", "green"], true, false],
  ]);

  for (const agent of [...fleet.agents, ...fleet.lbAgents]) {
    const { stateDir } = agent.options;
    t.deepEqual(hostProcesses(stateDir).filter((p) => p.kind === "instance"), [], `${agent.options.name}: no instance left`);
    t.deepEqual(appProcessesUnder(stateDir), [], `${agent.options.name}: no app process left, orphans included`);
    t.deepEqual(siteFilesOf(stateDir, "geoip"), [], `${agent.options.name}: no nginx site file left`);
    t.false(existsSync(join(stateDir, "apps", "geoip")), `${agent.options.name}: no saved state left`);
  }
  for (const address of fleet.addresses) await t.throwsAsync(getThroughProxy(address, APP_PORTS.listen), { message: /ECONNREFUSED/ }, `${address}:${APP_PORTS.listen} no longer answers`);
  await t.throwsAsync(getThroughProxy(fleet.lbAddresses[0]!, LB_LISTEN), { message: /ECONNREFUSED/ }, "the load balancer's port no longer answers");

  const status = await fleet.coordinator.cli(["status", "geoip"]);
  t.is(status.exitCode, 65, status.stderr);
  t.regex(status.stderr, /geoip is unknown: never deployed, or removed/);
  const apps = await fleet.coordinator.cliJson<string[]>(["apps"]);
  t.deepEqual(apps.json, []);
  const history = await fleet.coordinator.cliJson<{ release: string; state: string }[]>(["history", "geoip"]);
  t.deepEqual(history.json.map((d) => [d.release, d.state]), [["v2", "succeeded"], ["v1", "succeeded"]], "its deployments are kept");
  const audit = await fleet.coordinator.cliJson<{ action: string; target: string; outcome: string }[]>(["audit"]);
  t.true(audit.json.some((a) => a.action === "POST /v1/apps/geoip/remove" && a.outcome === "200"), "the removal is audited");
  const again = await fleet.coordinator.cli(["apps", "remove", "geoip", "--yes"]);
  t.is(again.exitCode, 65, "an app removed and no longer run anywhere is unknown");
});
