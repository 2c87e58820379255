import test from "ava";
import { readdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type CoordinatorProcess, type Fleet } from "./harness/fleet.js";
import { hostProcesses } from "./harness/host-processes.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";

const LISTEN = 8080;
const PORTS = { listen: LISTEN, blue: 7001, green: 7002 };

interface DeployJson {
  status: string;
  kind: string;
  release: string;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

interface ReleasesJson {
  app: string;
  hosts: {
    name: string;
    state: string;
    live: string | null;
    reporting: string;
    reportedAt: string | null;
    releases: { release: string; live: boolean; sha256: string; unpackedAt: string }[];
  }[];
}

/** The CLI's outcome with what an operator would read when a step that should pass does not. */
async function run(coordinator: CoordinatorProcess, args: string[]): Promise<{ exitCode: number | null; json: DeployJson; why: string }> {
  const result = await coordinator.cliJson<DeployJson>(args);
  return { exitCode: result.exitCode, json: result.json, why: `${result.stderr}\n${JSON.stringify(result.json.hosts?.map((h) => [h.name, h.outcome, h.error]))}` };
}

async function versionsThroughProxies(fleet: Fleet): Promise<(string | undefined)[]> {
  return Promise.all(fleet.addresses.map(async (a) => (await getThroughProxy(a, LISTEN)).version));
}

async function readToken(coordinator: CoordinatorProcess): Promise<string> {
  const { json } = await coordinator.cliJson<{ token: string }>(["token", "create", "--api", "--role", "read", "--name", "dashboard"]);
  return json.token;
}

/** What must not move when a rollback is refused: the deployments, what each proxy serves, and each host's app processes. */
async function snapshot(fleet: Fleet) {
  const history = await fleet.coordinator.cliJson<unknown[]>(["history", "geoip"]);
  return {
    deployments: history.json.length,
    versions: await versionsThroughProxies(fleet),
    processes: fleet.agents.map((a) => hostProcesses(a.options.stateDir).filter((p) => p.kind === "instance").map((p) => `${p.label}:${p.pid}`).sort()),
  };
}

test.serial("rollback --to v1 after v1, v2, v3 on three hosts: a blue/green swap to the kept v1 under load with 0 failed requests; releases lists v1..v3; a release never deployed and the live one are refused, changing nothing", async (t) => {
  const fleet = await startFleet(t, { hosts: 3 });
  const { coordinator } = fleet;
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, keepPrevious: "10m" });
  for (const release of ["v1", "v2", "v3"]) {
    const deployed = await run(coordinator, ["deploy", spec, "--release", release]);
    t.is(deployed.exitCode, 0, deployed.why);
  }
  t.deepEqual(await versionsThroughProxies(fleet), ["v3", "v3", "v3"]);

  const load = loadThroughProxies(t, fleet.addresses, LISTEN, { retry: true });
  await load.completed(20);
  const rollback = await run(coordinator, ["rollback", "geoip", "--to", "v1"]);
  t.is(rollback.exitCode, 0, rollback.why);
  t.like(rollback.json, { kind: "rollback", status: "succeeded", release: "v1" });
  // v3 was live on blue (v1 blue, v2 green, v3 blue): v1 starts on the idle green, as a deploy of it would.
  t.deepEqual(rollback.json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release]), [
    ["web-1", "succeeded", "green", "v1"],
    ["web-2", "succeeded", "green", "v1"],
    ["web-3", "succeeded", "green", "v1"],
  ]);
  await load.completed(20);
  t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1", "v1"]);
  const reports = await Promise.all(load.runs.map((r) => r.stop()));
  for (const [i, report] of reports.entries()) {
    t.log(`${fleet.addresses[i]}: ${report.requests} requests, ${report.failed} failed, ${report.socketErrors} socket errors, ${report.retries} retries, answers ${JSON.stringify(report.answers)}`);
    t.deepEqual(report.failures, [], `no failed request through web-${i + 1}`);
    t.is(report.failed, 0);
    t.true((report.answers.v3 ?? 0) > 0 && (report.answers.v1 ?? 0) > 0, "the load saw v3, then v1");
  }

  // A read token may list what each host keeps.
  const reader = await readToken(coordinator);
  const listed = await coordinator.cli(["releases", "geoip", "--json"], reader);
  t.is(listed.exitCode, 0, listed.stderr);
  const releases = JSON.parse(listed.stdout) as ReleasesJson;
  t.is(releases.app, "geoip");
  t.deepEqual(
    releases.hosts.map((h) => [h.name, h.state, h.live, h.reporting, h.releases.map((r) => [r.release, r.live])]),
    ["web-1", "web-2", "web-3"].map((name) => [name, "online", "v1", "reported", [["v3", false], ["v2", false], ["v1", true]]]),
    "newest unpacked first; v1's tree was kept and reused",
  );
  for (const host of releases.hosts) t.true(host.releases.every((r) => /^[0-9a-f]{64}$/.test(r.sha256)));
  const table = await coordinator.cli(["releases", "geoip"], reader);
  t.regex(table.stdout, /^HOST\s+STATE\s+LIVE\s+KEPT$/m);
  t.regex(table.stdout, /^web-1\s+online\s+v1\s+v3, v2, v1 \(live\)$/m);
  const forbidden = await coordinator.cli(["rollback", "geoip", "--to", "v2"], reader);
  t.is(forbidden.exitCode, 77, "denied: a read token cannot roll back");

  const history = await coordinator.cliJson<{ kind: string; release: string; state: string }[]>(["history", "geoip"]);
  t.deepEqual(history.json.map((d) => [d.kind, d.release, d.state]), [
    ["rollback", "v1", "succeeded"],
    ["deploy", "v3", "succeeded"],
    ["deploy", "v2", "succeeded"],
    ["deploy", "v1", "succeeded"],
  ]);

  const before = await snapshot(fleet);
  const refusals: [string[], RegExp][] = [
    [["--to", "v9"], /v9 was never deployed for geoip \(releases deployed, newest first: v3, v2, v1\); nothing was changed.*\(ERR_RELEASE_UNKNOWN\)/s],
    [["--to", "v1"], /v1 is already live on every host of geoip \(web-1, web-2, web-3\); nothing was changed.*\(ERR_ALREADY_LIVE\)/s],
  ];
  for (const [args, message] of refusals) {
    const refused = await coordinator.cli(["rollback", "geoip", ...args]);
    t.is(refused.exitCode, 65, `refused as invalid: ${args.join(" ")}`);
    t.regex(refused.stderr, message);
  }
  const badName = await coordinator.cli(["rollback", "geoip", "--to", "../v1"]);
  t.is(badName.exitCode, 64);
  t.regex(badName.stderr, /--to must be 1–64 characters/);
  // The coordinator checks the name too, whatever client calls it.
  const direct = await fetch(`${coordinator.url}/v1/apps/geoip/releases/${encodeURIComponent("../v1")}/rollback`, { method: "POST", headers: { authorization: `Bearer ${coordinator.adminToken}` } });
  t.is(direct.status, 400);
  t.like(((await direct.json()) as { error: { code: string } }).error, { code: "ERR_BAD_REQUEST" });
  t.deepEqual(await snapshot(fleet), before, "no deployment recorded, nothing served or started differently");
});

test.serial("rollback --to a release a host never had: refused while the app is locked, and naming the host while the coordinator has no artifact for it; with the artifact back, that host fetches it and every host serves it", async (t) => {
  const fleet = await startFleet(t, { hosts: 2, labels: (i) => `role=geoip,zone=${i === 0 ? "a" : "b"}` });
  const { coordinator } = fleet;
  const v1 = await run(coordinator, ["deploy", writeExampleSpec(fleet.dir, { ...PORTS, selector: { role: "geoip", zone: "a" } }, "zone-a.yml"), "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.why);
  t.deepEqual(v1.json.hosts.map((h) => h.name), ["web-1"], "v1 went to zone a only");
  const v2 = await run(coordinator, ["deploy", writeExampleSpec(fleet.dir, PORTS), "--release", "v2"]);
  t.is(v2.exitCode, 0, v2.why);
  t.deepEqual(await versionsThroughProxies(fleet), ["v2", "v2"]);

  // A locked app refuses it like any rollback.
  t.is((await coordinator.cli(["lock", "acquire", "geoip", "-m", "freeze"])).exitCode, 0);
  const locked = await coordinator.cli(["rollback", "geoip", "--to", "v1"]);
  t.is(locked.exitCode, 75, "try later: the app is locked");
  t.regex(locked.stderr, /geoip is locked by \S+ since \S+: "freeze"; nothing was deployed.*\(ERR_APP_LOCKED\)/s);
  t.is((await coordinator.cli(["lock", "release", "geoip"])).exitCode, 0);

  const artifacts = join(coordinator.dataDir, "artifacts");
  const [archive] = readdirSync(artifacts).filter((f) => f.endsWith(".tar.gz"));
  renameSync(join(artifacts, archive!), join(fleet.dir, archive!));
  const before = await snapshot(fleet);
  const refused = await coordinator.cli(["rollback", "geoip", "--to", "v1"]);
  t.is(refused.exitCode, 65, "refused: the release cannot be switched to (ERR_RELEASE_NOT_KEPT)");
  t.regex(refused.stderr, /1 host\(s\) cannot switch to v1 and the coordinator no longer has its artifact \(sha256 [0-9a-f]{12}…\); nothing was changed:\n\s+web-2: does not keep v1\n.*\(ERR_RELEASE_NOT_KEPT\)/s);
  t.deepEqual(await snapshot(fleet), before, "nothing changed");

  renameSync(join(fleet.dir, archive!), join(artifacts, archive!));
  const rollback = await run(coordinator, ["rollback", "geoip", "--to", "v1"]);
  t.is(rollback.exitCode, 0, rollback.why);
  t.deepEqual(rollback.json.hosts.map((h) => [h.name, h.outcome, h.release]), [
    ["web-1", "succeeded", "v1"],
    ["web-2", "succeeded", "v1"],
  ], "web-2 is reached as a host that runs geoip, though v1's spec selects zone a only");
  t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1"]);
  const releases = await coordinator.cliJson<ReleasesJson>(["releases", "geoip"]);
  t.deepEqual(releases.json.hosts.map((h) => [h.name, h.releases.map((r) => r.release).sort()]), [
    ["web-1", ["v1", "v2"]],
    ["web-2", ["v1", "v2"]],
  ], "web-2 now keeps the v1 it fetched");
});
