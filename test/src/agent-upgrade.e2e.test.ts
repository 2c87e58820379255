// `cutover agents upgrade`: three hosts installed by install.sh (its --root/--no-systemd test
// mode, so each agent runs from an installed file under install.sh's wrapper, which restarts it),
// serving the sample app under load through their proxies. What an operator checks: every host
// reports the new version, not one request failed; a bundle that crashes at start is put back
// by the first host itself and the upgrade halts with the reason, the other hosts untouched; so
// is one that starts but never comes online, at the deadline.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startCoordinator } from "./harness/fleet.js";
import { tempDir } from "./harness/processes.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";
import { ensureAgentBundle, patchedAgentBundle } from "./install/bundle.js";
import { agentPids, PATHS } from "./install/host-root.js";
import { hostList, installHosts } from "./install/installed-fleet.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };

interface ReportJson {
  version: string;
  halted: string | null;
  hosts: { host: string; from: string; now: string; outcome: string; message: string }[];
}

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

test.before(() => {
  if (process.getuid?.() !== 0) throw new Error("the agent upgrade test needs root: install.sh refuses to run without it");
});

test.serial("agents upgrade: 3 installed hosts under load move to the new version with 0 failed requests; a bundle that crashes at start is rolled back on its first host and halts the upgrade", async (t) => {
  const bundle = await ensureAgentBundle();
  const coordinator = await startCoordinator(t);
  const hostsUp = await installHosts(t, coordinator, bundle, ["role=geoip", "role=geoip", "role=geoip"]);
  const addresses = hostsUp.map((h) => h.address);
  const spec = writeExampleSpec(tempDir(t, "cutover-upgrade-spec-"), { ...PORTS, batch: 3 });
  const deploy = await coordinator.cli(["deploy", spec, "--release", "v1", "--json"]);
  t.is(deploy.exitCode, 0, `${deploy.stdout}\n${deploy.stderr}`);
  for (const address of addresses) t.like(await getThroughProxy(address, PORTS.listen), { status: 200, version: "v1" });

  const load = loadThroughProxies(t, addresses, PORTS.listen, { retry: false });
  await load.completed(20);

  // A second build that differs only in the version it reports.
  const dir = tempDir(t, "cutover-upgrade-bundles-");
  const next = patchedAgentBundle(bundle, dir, { version: "0.1.1-upgrade" });
  const upgrade = await coordinator.cli(["agents", "upgrade", "--file", next, "--batch", "1", "--json"]);
  t.is(upgrade.exitCode, 0, `${upgrade.stdout}\n${upgrade.stderr}`);
  const report = JSON.parse(upgrade.stdout) as ReportJson;
  t.is(report.halted, null);
  t.deepEqual(report.hosts.map((h) => [h.host, h.from, h.now, h.outcome]), [
    ["web-1", "0.1.0", "0.1.1-upgrade", "upgraded"],
    ["web-2", "0.1.0", "0.1.1-upgrade", "upgraded"],
    ["web-3", "0.1.0", "0.1.1-upgrade", "upgraded"],
  ]);
  t.deepEqual((await hostList(coordinator)).map((h) => [h.name, h.state, h.agentVersion]), [
    ["web-1", "online", "0.1.1-upgrade"],
    ["web-2", "online", "0.1.1-upgrade"],
    ["web-3", "online", "0.1.1-upgrade"],
  ]);
  for (const host of hostsUp) {
    const file = join(host.root, PATHS.agentJs);
    t.is(sha256(file), sha256(next), `${host.name} runs the new file`);
    t.is(sha256(`${file}.previous`), sha256(bundle), `${host.name} keeps the file it replaced`);
    t.false(existsSync(`${file}.trial`), `${host.name}'s new agent confirmed its trial`);
    t.is(agentPids(host.root).length, 1, `one agent on ${host.name}`);
  }
  await load.completed(20);

  // The same again, but the new build crashes at start: web-1 puts its previous file back by itself.
  const crashing = patchedAgentBundle(bundle, dir, { version: "0.1.2-crash", startup: "crash" });
  const halted = await coordinator.cli(["agents", "upgrade", "--file", crashing, "--batch", "1", "--deadline", "20s", "--json"]);
  t.is(halted.exitCode, 1, `${halted.stdout}\n${halted.stderr}`);
  const haltReport = JSON.parse(halted.stdout) as ReportJson;
  t.deepEqual(haltReport.hosts.map((h) => [h.host, h.now, h.outcome]), [
    ["web-1", "0.1.1-upgrade", "rolled-back"],
    ["web-2", "0.1.1-upgrade", "not-started"],
    ["web-3", "0.1.1-upgrade", "not-started"],
  ]);
  t.regex(haltReport.hosts[0]!.message, /came back running 0\.1\.1-upgrade, not 0\.1\.2-crash: the new agent 0\.1\.2-crash exited with code 1; the previous file was put back/);
  t.regex(haltReport.halted ?? "", /^halted after batch 1 of 3: web-1: /);
  t.regex(halted.stderr, /agent upgrade halted/);
  t.deepEqual((await hostList(coordinator)).map((h) => [h.name, h.state, h.agentVersion]), [
    ["web-1", "online", "0.1.1-upgrade"],
    ["web-2", "online", "0.1.1-upgrade"],
    ["web-3", "online", "0.1.1-upgrade"],
  ]);
  t.is(sha256(join(hostsUp[0]!.root, PATHS.agentJs)), sha256(next), "web-1 runs the file it had before");
  t.is(sha256(join(hostsUp[1]!.root, PATHS.agentJs)), sha256(next), "web-2 was not touched");

  // A build that starts but never comes online: the wrapper's watchdog stops it at the deadline and puts the previous file back.
  const hanging = patchedAgentBundle(bundle, dir, { version: "0.1.3-hang", startup: "hang" });
  const late = await coordinator.cli(["agents", "upgrade", "--file", hanging, "--hosts", "role=geoip", "--deadline", "5s", "--json"]);
  t.is(late.exitCode, 1, `${late.stdout}\n${late.stderr}`);
  const lateReport = JSON.parse(late.stdout) as ReportJson;
  t.deepEqual(lateReport.hosts.map((h) => [h.host, h.now, h.outcome]), [
    ["web-1", "0.1.1-upgrade", "rolled-back"],
    ["web-2", "0.1.1-upgrade", "not-started"],
    ["web-3", "0.1.1-upgrade", "not-started"],
  ]);
  t.regex(lateReport.hosts[0]!.message, /the new agent 0\.1\.3-hang did not come online within 5 s; the previous file was put back/);
  t.is(sha256(join(hostsUp[0]!.root, PATHS.agentJs)), sha256(next));
  t.is(agentPids(hostsUp[0]!.root).length, 1, "the hung agent is gone");

  await load.completed(20);
  const reports = await Promise.all(load.runs.map((r) => r.stop()));
  for (const [i, r] of reports.entries()) {
    t.log(`${addresses[i]}: ${r.requests} requests, ${r.failed} failed, ${r.socketErrors} socket errors, answers ${JSON.stringify(r.answers)}`);
    t.deepEqual(r.failures, [], `no failed request through web-${i + 1}`);
    t.is(r.socketErrors, 0);
    t.deepEqual(Object.keys(r.answers), ["v1"]);
  }
});
