import test from "ava";
import { request } from "node:http";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { CUTOVER_BIN, spawnWatched } from "./harness/processes.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";
import { hostProcesses } from "./harness/host-processes.js";

const APP_PORTS = { listen: 8080, blue: 7001, green: 7002 };
const LB_LISTEN = 8090;

interface DeployJson {
  status: string;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

async function deploy(fleet: Fleet, spec: string, release: string, extra: string[] = []): Promise<{ exitCode: number | null; json: DeployJson; why: string }> {
  const result = await fleet.coordinator.cliJson<DeployJson>(["deploy", spec, "--release", release, ...extra]);
  const { json } = result;
  return { exitCode: result.exitCode, json, why: `${result.stderr}\n${JSON.stringify(json.hosts.map((h) => [h.name, h.outcome, h.error]))}` };
}

/** Versions the front load balancer serves to `count` new users (fresh connections, no cookie). */
async function versionsThroughLb(fleet: Fleet, count = 20): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const answer = await getThroughProxy(fleet.lbAddresses[0]!, LB_LISTEN);
    const key = answer.status === 200 ? String(answer.version) : `status ${answer.status}`;
    seen[key] = (seen[key] ?? 0) + 1;
  }
  return seen;
}

function lbLoad(t: { teardown(fn: () => Promise<unknown>): void }, fleet: Fleet) {
  return loadThroughProxies(t, fleet.lbAddresses, LB_LISTEN, { retry: true, concurrency: 2 });
}

async function stopLoad(t: { deepEqual(a: unknown, b: unknown, m?: string): void; log(...a: unknown[]): void }, load: ReturnType<typeof lbLoad>) {
  const reports = await Promise.all(load.runs.map((r) => r.stop()));
  for (const report of reports) {
    t.log(`through the load balancer: ${report.requests} requests, ${report.failed} failed, ${report.retries} retries, answers ${JSON.stringify(report.answers)}`);
    t.deepEqual(report.failures, [], "no failed request through the load balancer");
  }
  return reports;
}

/** The first release behind a load balancer: every host gets it, then the upstream takes them all. */
async function firstRelease(t: { is(a: unknown, b: unknown, m?: string): void }, fleet: Fleet, spec: string): Promise<void> {
  const v1 = await deploy(fleet, spec, "v1");
  t.is(v1.exitCode, 0, v1.why);
}

test.serial("rolling: each batch drains at the load balancer, is replaced in place and goes back in; 0 failed requests, and the rollback takes the same path", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, strategy: { type: "rolling" } });
  await firstRelease(t, fleet, spec);
  t.deepEqual(await versionsThroughLb(fleet), { v1: 20 });

  const load = lbLoad(t, fleet);
  await load.completed(20);
  const v2 = await deploy(fleet, spec, "v2");
  t.is(v2.exitCode, 0, v2.why);
  t.deepEqual(v2.json.hosts.map((h) => [h.name, h.outcome, h.release]), [
    ["web-1", "succeeded", "v2"],
    ["web-2", "succeeded", "v2"],
    ["web-3", "succeeded", "v2"],
  ]);
  t.deepEqual(v2.json.hosts.map((h) => h.liveColor), ["blue", "blue", "blue"], "in place: the same color, no second copy");
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 });
  const rollback = await fleet.coordinator.cli(["rollback", "geoip"]);
  t.is(rollback.exitCode, 0, rollback.stderr);
  t.regex(rollback.stdout, /it takes as long as the deploy did/);
  t.deepEqual(await versionsThroughLb(fleet), { v1: 20 });
  await load.completed(20);
  await stopLoad(t, load);
});

test.serial("rolling: a host failing its health gate halts the rollout at max_failures and every host keeps serving a healthy release", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, deadline: "3s", strategy: { type: "rolling" } });
  await firstRelease(t, fleet, spec);
  const load = lbLoad(t, fleet);
  const bad = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, deadline: "3s", appArgs: ["--fail-health"], strategy: { type: "rolling" } }, "bad.yml");
  const result = await deploy(fleet, bad, "v2");
  t.is(result.exitCode, 1);
  t.is(result.json.status, "rolled_back");
  t.deepEqual(result.json.hosts.map((h) => h.outcome), ["failed", "skipped", "skipped"]);
  t.regex(result.json.hosts[0]!.error ?? "", /ERR_HEALTH_DEADLINE/);
  t.deepEqual(await versionsThroughLb(fleet), { v1: 20 });
  for (const address of fleet.addresses) t.is((await getThroughProxy(address, APP_PORTS.listen)).version, "v1");
  await stopLoad(t, load);
});

const CANARY = { type: "canary", canary: { hosts: 1, weight: 30, cookie: "cutover_canary", pin: { header: "X-Canary", value: "1" } } };

/** Starts a canary deploy and resolves once it is paused waiting for promotion. */
async function canaryDeploy(fleet: Fleet, spec: string, release: string) {
  const deploy = spawnWatched("deploy", CUTOVER_BIN, ["deploy", spec, "--release", release], {
    CUTOVER_URL: fleet.coordinator.url,
    CUTOVER_TOKEN: fleet.coordinator.adminToken,
    CUTOVER_CONFIG: "/nonexistent",
  });
  await deploy.waitForLine(/running → paused: canary is live/);
  return deploy;
}

interface Answer {
  version: string;
  cookie: string | undefined;
}

function getWithCookie(address: string, cookie?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port: LB_LISTEN, path: "/api/v1/geoip/1.2.3.4", agent: false, headers: { ...headers, ...(cookie ? { cookie } : {}) } }, (res) => {
      res.resume();
      res.on("end", () => {
        const set = ([] as string[]).concat(res.headers["set-cookie"] ?? []).find((c) => c.startsWith("cutover_canary="));
        resolve({ version: String(res.headers["x-app-version"]), cookie: set?.split(";")[0] });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

test.serial("canary: 30% of new users reach the canary, sticky by cookie; a pinned header always does; promote takes the fleet", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, strategy: CANARY });
  await firstRelease(t, fleet, spec);
  const load = lbLoad(t, fleet);
  const deploying = await canaryDeploy(fleet, spec, "v2");

  const USERS = 400;
  const TOLERANCE = 8; // percentage points: 400 users at p=0.3 gives a standard deviation of 2.3 points; 8 is 3.5 sigma
  const lb = fleet.lbAddresses[0]!;
  const firsts: Answer[] = [];
  for (let i = 0; i < USERS; i++) firsts.push(await getWithCookie(lb));
  const share = (100 * firsts.filter((a) => a.version === "v2").length) / USERS;
  t.log(`new users sent to the canary: ${share.toFixed(1)}% of ${USERS} (weight 30%, tolerance ±${TOLERANCE} points)`);
  t.true(Math.abs(share - 30) <= TOLERANCE, `canary share ${share}%`);
  t.true(firsts.every((a) => a.cookie !== undefined), "every first response sets the sticky cookie");

  let sticky = 0;
  let later = 0;
  for (const first of firsts.slice(0, 100)) {
    for (let i = 0; i < 10; i++) {
      const again = await getWithCookie(lb, first.cookie);
      later++;
      if (again.version === first.version) sticky++;
    }
  }
  t.log(`stickiness: ${sticky} of ${later} later requests of 100 users reached the same group as their first`);
  t.is(sticky, later, "100% of a user's later requests reach the group of their first");
  for (let i = 0; i < 20; i++) t.is((await getWithCookie(lb, undefined, { "X-Canary": "1" })).version, "v2", "a pinned user always reaches the canary");

  const promote = await fleet.coordinator.cli(["promote", "geoip"]);
  t.is(promote.exitCode, 0, promote.stderr);
  t.is((await deploying.exited).code, 0, deploying.lines.slice(-10).join("\n"));
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 });
  await load.completed(20);
  await stopLoad(t, load);
});

test.serial("canary: abort rolls the canary back and removes its weight, with 0 failed requests", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, strategy: CANARY });
  await firstRelease(t, fleet, spec);
  const load = lbLoad(t, fleet);
  const deploying = await canaryDeploy(fleet, spec, "v2");
  t.true(((await versionsThroughLb(fleet, 60)).v2 ?? 0) > 0, "the canary takes some new users");
  const abort = await fleet.coordinator.cli(["abort", "geoip"]);
  t.is(abort.exitCode, 0, abort.stderr);
  t.is((await deploying.exited).code, 1);
  t.true(deploying.lines.some((l) => /rolled_back/.test(l)));
  t.deepEqual(await versionsThroughLb(fleet, 40), { v1: 40 });
  for (const address of fleet.addresses) t.is((await getThroughProxy(address, APP_PORTS.listen)).version, "v1");
  await stopLoad(t, load);
});

test.serial("fleet-bluegreen: the idle group gets the release, weights shift 10 → 50 → 100, and rollback is one switch; 0 failed requests", async (t) => {
  const fleet = await startFleet(t, { hosts: 4, lbHosts: 1, labels: (i) => `role=geoip,group=${i < 2 ? "a" : "b"}` });
  const spec = writeExampleSpec(fleet.dir, {
    ...APP_PORTS,
    lbListen: LB_LISTEN,
    batch: "100%",
    strategy: { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, steps: [10, 50, 100], step_pause: "1s" },
  });
  const v1 = await deploy(fleet, spec, "v1");
  t.is(v1.exitCode, 0, v1.why);
  t.deepEqual(v1.json.hosts.map((h) => h.name), ["web-1", "web-2"], "first release: group a (blue)");
  t.deepEqual(await versionsThroughLb(fleet), { v1: 20 });

  const load = lbLoad(t, fleet);
  const v2 = await deploy(fleet, spec, "v2");
  t.is(v2.exitCode, 0, v2.why);
  t.deepEqual(v2.json.hosts.map((h) => [h.name, h.release]), [["web-3", "v2"], ["web-4", "v2"]], "the idle group b got v2");
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 });
  const history = JSON.parse((await fleet.coordinator.cli(["history", "geoip", "--json"])).stdout) as { id: string }[];
  const events = await fetch(`${fleet.coordinator.url}/v1/deployments/${history[0]!.id}/events`, { headers: { authorization: `Bearer ${fleet.coordinator.adminToken}` } }).then((r) => r.text());
  t.true(/10% to group b/.test(events) && /50% to group b/.test(events) && /100% to group b/.test(events), "the weights moved in steps");
  for (const address of fleet.addresses.slice(0, 2)) t.is((await getThroughProxy(address, APP_PORTS.listen)).version, "v1", "the old group is untouched");

  const rollback = await fleet.coordinator.cli(["rollback", "geoip", "--json"]);
  t.is(rollback.exitCode, 0, rollback.stderr);
  t.deepEqual(await versionsThroughLb(fleet), { v1: 20 });
  await load.completed(20);
  const reports = await stopLoad(t, load);
  t.true(reports.every((r) => (r.answers.v1 ?? 0) > 0 && (r.answers.v2 ?? 0) > 0));
});

test.serial("cutover check fails a host that reports too little free memory, with the numbers, and deploy refuses to start there", async (t) => {
  const fleet = await startFleet(t, { hosts: 2 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, minFreeMemory: "64T" });
  const check = await fleet.coordinator.cli(["check", spec]);
  t.is(check.exitCode, 1, "failed: the preflight ran and failed");
  t.regex(check.stdout, /web-1\s+reachable\s+pass/);
  t.regex(check.stdout, /memory\s+FAIL\s+64 TiB \(resources\.min_free_memory\)\s+[\d.]+ GiB available\s+only [\d.]+ GiB of memory available, 64 TiB needed/);
  const json = JSON.parse((await fleet.coordinator.cli(["check", spec, "--json"])).stdout) as { ok: boolean; hosts: { name: string; ok: boolean }[] };
  t.false(json.ok);
  t.deepEqual(json.hosts.map((h) => [h.name, h.ok]), [["web-1", false], ["web-2", false]]);
  const refused = await fleet.coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(refused.exitCode, 65, "refused by the coordinator (ERR_PREFLIGHT_FAILED)");
  t.regex(refused.stderr, /the resource preflight failed on 2 host\(s\); nothing was deployed/);
  t.regex(refused.stderr, /web-1: only [\d.]+ GiB of memory available, 64 TiB needed/);
  const ok = writeExampleSpec(fleet.dir, { ...APP_PORTS, minFreeMemory: "1M" }, "ok.yml");
  t.is((await fleet.coordinator.cli(["check", ok])).exitCode, 0);
});

// What the analysis watches besides requests (those are analysis.e2e's): with min_requests 0 a quiet canary is judged by its health alone.
test.serial("canary analysis: a canary that stays healthy through the window is promoted by itself; one whose instance dies is rolled back", async (t) => {
  const fleet = await startFleet(t, { hosts: 2, lbHosts: 1 });
  const withAnalysis = { ...CANARY, canary: { ...CANARY.canary, analysis: { window: "3s", max_error_rate: "1%", min_requests: 0 } } };
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, strategy: withAnalysis });
  await firstRelease(t, fleet, spec);

  const promoted = await deploy(fleet, spec, "v2");
  t.is(promoted.exitCode, 0, promoted.why);
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 });

  const watching = spawnWatched("deploy", CUTOVER_BIN, ["deploy", spec, "--release", "v3"], {
    CUTOVER_URL: fleet.coordinator.url,
    CUTOVER_TOKEN: fleet.coordinator.adminToken,
    CUTOVER_CONFIG: "/nonexistent",
  });
  await watching.waitForLine(/web-1\s+canary analysis: v3 healthy as pid \d+/);
  const canaryInstance = hostProcesses(fleet.agents[0]!.options.stateDir).find((p) => p.kind === "instance" && p.label === "geoip/blue");
  t.truthy(canaryInstance, "the canary runs v3 on blue");
  process.kill(canaryInstance!.pid, "SIGKILL");
  t.is((await watching.exited).code, 1);
  t.true(watching.lines.some((l) => /canary analysis failed: web-1's instance/.test(l)), watching.lines.slice(-8).join("\n"));
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 }, `back on the release before the canary:\n${watching.lines.slice(-25).join("\n")}`);
});

test.serial("a canary waiting for promotion when the coordinator is killed is rolled back by the restarted coordinator, with 0 failed requests", async (t) => {
  const fleet = await startFleet(t, { hosts: 2, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...APP_PORTS, lbListen: LB_LISTEN, strategy: CANARY });
  await firstRelease(t, fleet, spec);
  const load = lbLoad(t, fleet);
  const deploying = await canaryDeploy(fleet, spec, "v2");
  await fleet.coordinator.restart("SIGKILL");
  await deploying.exited;
  const history = async () => JSON.parse((await fleet.coordinator.cli(["history", "geoip", "--json"])).stdout) as { state: string; release: string }[];
  let latest = (await history())[0]!;
  for (let i = 0; i < 100 && latest.state !== "rolled_back"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200)); // the CLI following it was killed with the coordinator: poll the record
    latest = (await history())[0]!;
  }
  t.like(latest, { release: "v2", state: "rolled_back" }, JSON.stringify(latest));
  t.deepEqual(await versionsThroughLb(fleet), { v1: 20 });
  for (const address of fleet.addresses) t.is((await getThroughProxy(address, APP_PORTS.listen)).version, "v1");
  await stopLoad(t, load);
});
