import test from "ava";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:net";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { appProcessesUnder, hostProcesses } from "./harness/host-processes.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";

const LISTEN = 8080;
const PORTS = { listen: LISTEN, blue: 7001, green: 7002 };

interface DeployJson {
  status: string;
  release: string;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

async function deploy(fleet: Fleet, spec: string, release: string): Promise<{ exitCode: number | null; json: DeployJson; stderr: string }> {
  const result = await fleet.coordinator.cliJson<DeployJson>(["deploy", spec, "--release", release]);
  const { json } = result;
  // What an operator would read when a deploy that should pass does not: the outcome and each host's error.
  const stderr = `${result.stderr}\n${JSON.stringify(json.hosts.map((h) => [h.name, h.outcome, h.error]))}`;
  return { exitCode: result.exitCode, json, stderr };
}

async function versionsThroughProxies(fleet: Fleet): Promise<(string | undefined)[]> {
  return Promise.all(fleet.addresses.map(async (a) => (await getThroughProxy(a, LISTEN)).version));
}

for (const mode of ["reload", "live"] as const) {
  const retry = mode === "reload";
  test.serial(`${mode} mode: v1 then v2 across three hosts, then a rollback, with 0 failed requests${retry ? " for a retrying client" : " and 0 socket errors without retries"}`, async (t) => {
    const fleet = await startFleet(t, { hosts: 3, switchMode: mode });
    const spec = writeExampleSpec(fleet.dir, { ...PORTS, keepPrevious: "10m" });

    const v1 = await deploy(fleet, spec, "v1");
    t.is(v1.exitCode, 0, v1.stderr);
    t.is(v1.json.status, "succeeded");
    t.deepEqual(v1.json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release]), [
      ["web-1", "succeeded", "blue", "v1"],
      ["web-2", "succeeded", "blue", "v1"],
      ["web-3", "succeeded", "blue", "v1"],
    ]);
    t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1", "v1"]);

    const load = loadThroughProxies(t, fleet.addresses, LISTEN, { retry });
    await load.completed(20);
    const v2 = await deploy(fleet, spec, "v2");
    t.is(v2.exitCode, 0, v2.stderr);
    t.deepEqual(v2.json.hosts.map((h) => [h.outcome, h.liveColor, h.release]), [
      ["succeeded", "green", "v2"],
      ["succeeded", "green", "v2"],
      ["succeeded", "green", "v2"],
    ]);
    await load.completed(20);
    t.deepEqual(await versionsThroughProxies(fleet), ["v2", "v2", "v2"]);

    const rollback = await fleet.coordinator.cli(["rollback", "geoip", "--json"]);
    t.is(rollback.exitCode, 0, rollback.stderr);
    t.deepEqual((JSON.parse(rollback.stdout) as DeployJson).hosts.map((h) => [h.outcome, h.liveColor, h.release]), [
      ["succeeded", "blue", "v1"],
      ["succeeded", "blue", "v1"],
      ["succeeded", "blue", "v1"],
    ]);
    await load.completed(20);
    t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1", "v1"]);

    const reports = await Promise.all(load.runs.map((r) => r.stop()));
    for (const [i, report] of reports.entries()) {
      t.log(`${fleet.addresses[i]}: ${report.requests} requests, ${report.failed} failed, ${report.socketErrors} socket errors, ${report.retries} retries, answers ${JSON.stringify(report.answers)}`);
      t.deepEqual(report.failures, [], `no failed request through web-${i + 1}`);
      t.is(report.failed, 0);
      if (!retry) t.is(report.socketErrors, 0, "live mode: not even a socket error");
      t.true((report.answers.v1 ?? 0) > 0 && (report.answers.v2 ?? 0) > 0, "the load saw both releases");
    }

    const status = await fleet.coordinator.cli(["status", "geoip", "--json"]);
    t.is(status.exitCode, 0);
    const hosts = (JSON.parse(status.stdout) as { hosts: { name: string; liveColor: string; release: string; health: string }[] }).hosts;
    t.deepEqual(hosts.map((h) => [h.name, h.liveColor, h.release, h.health]), [
      ["web-1", "blue", "v1", "healthy"],
      ["web-2", "blue", "v1", "healthy"],
      ["web-3", "blue", "v1", "healthy"],
    ]);
    const history = await fleet.coordinator.cli(["history", "geoip", "--json"]);
    t.deepEqual((JSON.parse(history.stdout) as { kind: string; state: string; release: string }[]).map((d) => [d.kind, d.release, d.state]), [
      ["rollback", "(previous)", "succeeded"],
      ["deploy", "v2", "succeeded"],
      ["deploy", "v1", "succeeded"],
    ]);
  });
}

/**
 * The bad release's health deadline: short where running out of it is the
 * failure; long where the failure ends the gate by itself (an exit), so a slow
 * start on a busy machine is not mistaken for the deadline.
 */
const badReleases: [string, string[], RegExp, string][] = [
  ["fails its health gate", ["--fail-health"], /ERR_HEALTH_DEADLINE/, "3s"],
  ["crashes at start", ["--crash-at-start"], /ERR_PROCESS_EXITED_EARLY/, "30s"],
  ["never listens", ["--never-listen"], /ERR_HEALTH_DEADLINE/, "3s"],
];

for (const [what, appArgs, error, deadline] of badReleases) {
  test.serial(`a release that ${what} leaves every host serving the old one, with 0 failed requests, and the deploy says which host and why`, async (t) => {
    const fleet = await startFleet(t, { hosts: 2 });
    const good = writeExampleSpec(fleet.dir, PORTS);
    const v1 = await deploy(fleet, good, "v1");
    t.is(v1.exitCode, 0, v1.stderr);
    const load = loadThroughProxies(t, fleet.addresses, LISTEN, { retry: true });
    await load.completed(10);

    const bad = writeExampleSpec(fleet.dir, { ...PORTS, deadline, appArgs }, "bad.yml");
    const result = await deploy(fleet, bad, "v2");
    t.is(result.exitCode, 1, "failed: the deploy ran and was rolled back");
    t.is(result.json.status, "rolled_back");
    const [first, second] = result.json.hosts;
    t.is(first!.outcome, "failed");
    t.regex(first!.error ?? "", error);
    t.is(second!.outcome, "skipped", "the rollout halted at max_failures=0");
    t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1"]);

    await load.completed(10);
    for (const report of await Promise.all(load.runs.map((r) => r.stop()))) {
      t.deepEqual(report.failures, []);
      t.deepEqual(Object.keys(report.answers), ["v1"]);
    }
    t.deepEqual(
      hostProcesses(join(fleet.agents[0]!.options.stateDir)).filter((p) => p.kind === "instance").map((p) => p.label),
      ["geoip/blue"],
      "the failed green instance was stopped",
    );
  });
}

test.serial("a config that nginx -t rejects leaves the previous one in place, and the deploy reports nginx's message", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const v1 = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v1");
  t.is(v1.exitCode, 0, v1.stderr);
  const site = join(fleet.agents[0]!.options.stateDir, "nginx", "sites", "geoip.conf");
  const before = createHash("sha256").update(readFileSync(site)).digest("hex");

  // An allowed directive (the coordinator checks names) with a value only nginx -t knows is wrong.
  const rejected = writeExampleSpec(fleet.dir, { ...PORTS, directives: ["gzip maybe"] }, "rejected.yml");
  const result = await deploy(fleet, rejected, "v2");
  t.is(result.exitCode, 1, "failed: the deploy ran and did not succeed");
  t.is(result.json.hosts[0]!.outcome, "failed");
  t.regex(result.json.hosts[0]!.error ?? "", /invalid value "maybe" in "gzip" directive/);
  t.regex(result.json.hosts[0]!.error ?? "", /ERR_NGINX_TEST_FAILED/);
  t.is(createHash("sha256").update(readFileSync(site)).digest("hex"), before, "the site file is byte-identical");
  t.deepEqual(await versionsThroughProxies(fleet), ["v1"]);
});

test.serial("an agent SIGKILLed in the middle of a swap comes back pointing at a healthy instance, with no orphan, and the next deploy works", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const agent = fleet.agents[0]!;
  const v1 = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v1");
  t.is(v1.exitCode, 0, v1.stderr);

  const slow = writeExampleSpec(fleet.dir, { ...PORTS, appArgs: ["--slow-start", "4000"] }, "slow.yml");
  const mark = agent.process.mark();
  const pending = deploy(fleet, slow, "v2");
  await agent.process.waitForLine(/health gate for green/, mark);
  await agent.process.kill("SIGKILL");
  t.deepEqual(await versionsThroughProxies(fleet), ["v1"], "still serving v1 while the agent is down");

  agent.start(); // a new process: its output starts empty
  await agent.process.waitForLine(/restarted in the middle of a transaction: reverting it/);
  await agent.online();
  // The rollout waited for the host and got the step's outcome from the restarted agent.
  const interrupted = await pending;
  t.is(interrupted.exitCode, 1, "failed: the deploy ran and did not succeed");
  t.is(interrupted.json.hosts[0]!.outcome, "failed");
  t.regex(interrupted.json.hosts[0]!.error ?? "", /the agent restarted during health; reverted \(ERR_AGENT_RESTARTED\)/);
  t.deepEqual(await versionsThroughProxies(fleet), ["v1"]);
  const stateDir = agent.options.stateDir;
  t.deepEqual(hostProcesses(stateDir).filter((p) => p.kind === "instance").map((p) => p.label), ["geoip/blue"]);
  const leftover = appProcessesUnder(stateDir).map((pid) => `${pid} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")}`);
  t.is(leftover.length, 1, `one app process left: the live blue one, no orphan green: ${leftover.join("; ")}`);

  const next = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v3");
  t.is(next.exitCode, 0, next.stderr);
  t.deepEqual(await versionsThroughProxies(fleet), ["v3"]);
});

test.serial("a bad spec is refused before anything reaches a host", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, blue: 7001, green: 7001 }, "same-ports.yml");
  const result = await fleet.coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(result.exitCode, 64, "bad input: the spec, found before anything was sent");
  t.regex(result.stderr, /the app spec is invalid; nothing was deployed/);
  t.regex(result.stderr, /same-ports\.yml: ports\.green: expected a port different from ports\.blue \(7001\)/);
  const missing = await fleet.coordinator.cli(["deploy", join(fleet.dir, "nope.yml"), "--release", "v1"]);
  t.is(missing.exitCode, 64, "bad input: a spec file that cannot be read");
  t.regex(missing.stderr, /nope\.yml/);
  const badRelease = await fleet.coordinator.cli(["deploy", writeExampleSpec(fleet.dir, PORTS), "--release", "../v1"]);
  t.is(badRelease.exitCode, 64, "bad input: the --release flag");
  t.regex(badRelease.stderr, /--release must be/);
  const history = await fleet.coordinator.cli(["history", "geoip", "--json"]);
  t.deepEqual(JSON.parse(history.stdout), [], "no deployment was recorded");
  t.deepEqual(hostProcesses(fleet.agents[0]!.options.stateDir), [], "no process started on the host");
});

test.serial("an idle-color port held by a process cutover does not manage fails the deploy up front, naming the port", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const v1 = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v1");
  t.is(v1.exitCode, 0, v1.stderr);
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(PORTS.green, fleet.addresses[0], resolve));
  t.teardown(() => squatter.close());
  const result = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v2");
  t.is(result.exitCode, 1, "failed: the deploy ran and did not succeed");
  t.regex(result.json.hosts[0]!.error ?? "", new RegExp(`port ${PORTS.green} on ${fleet.addresses[0]!.replaceAll(".", "\\.")} .* in use .*ERR_PORT_IN_USE`));
  t.deepEqual(await versionsThroughProxies(fleet), ["v1"]);
});

test.serial("a live instance that crashes is restarted on its color and serves again", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const agent = fleet.agents[0]!;
  const v1 = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v1");
  t.is(v1.exitCode, 0, v1.stderr);
  const [blue] = hostProcesses(agent.options.stateDir).filter((p) => p.kind === "instance");
  const mark = agent.process.mark();
  process.kill(blue!.pid, "SIGKILL");
  await agent.process.waitForLine(/the live instance exited; restarting it app=geoip color=blue .*cause="signal SIGKILL"/, mark);
  await agent.process.waitForLine(/the live instance is back app=geoip color=blue release=v1/, mark);
  t.deepEqual(await versionsThroughProxies(fleet), ["v1"]);
  const [again] = hostProcesses(agent.options.stateDir).filter((p) => p.kind === "instance");
  t.not(again!.pid, blue!.pid);
});
