// A fleet whose agents run different versions, as it is halfway through `cutover agents
// upgrade`: three hosts installed by install.sh, one of them upgraded (`--hosts ring=canary`)
// to a build that says it is another version, the other two left on the old one. What an
// operator checks: `cutover hosts` shows both versions, and a blue/green deploy across all
// three and a rollback go through with not one failed request through their proxies.
import test from "ava";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startCoordinator } from "./harness/fleet.js";
import { tempDir } from "./harness/processes.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";
import { ensureAgentBundle, patchedAgentBundle } from "./install/bundle.js";
import { hostList, installHosts } from "./install/installed-fleet.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };
const NEXT = "0.1.1-mixed";

interface DeployJson {
  status: string;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

test.before(() => {
  if (process.getuid?.() !== 0) throw new Error("the mixed-version test needs root: install.sh refuses to run without it");
});

test.serial("a mixed-version fleet keeps working: one host of 3 upgraded, `cutover hosts` shows both versions, a blue/green deploy and a rollback under load with 0 failed requests", async (t) => {
  const bundle = await ensureAgentBundle();
  const coordinator = await startCoordinator(t);
  const installed = await installHosts(t, coordinator, bundle, ["role=geoip,ring=main", "role=geoip,ring=canary", "role=geoip,ring=main"]);
  const addresses = installed.map((h) => h.address);
  const spec = writeExampleSpec(tempDir(t, "cutover-mixed-spec-"), PORTS);
  const v1 = await coordinator.cliJson<DeployJson>(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, `${v1.stdout}\n${v1.stderr}`);

  const load = loadThroughProxies(t, addresses, PORTS.listen, { retry: false });
  await load.completed(20);

  // Only the canary ring moves to the new build; its agent restarts into it while its app keeps serving.
  const next = patchedAgentBundle(bundle, tempDir(t, "cutover-mixed-bundles-"), { version: NEXT });
  const upgrade = await coordinator.cliJson<{ halted: string | null; hosts: { host: string; from: string; now: string; outcome: string }[] }>(["agents", "upgrade", "--file", next, "--hosts", "ring=canary"]);
  t.is(upgrade.exitCode, 0, `${upgrade.stdout}\n${upgrade.stderr}`);
  t.deepEqual(upgrade.json.hosts.map((h) => [h.host, h.from, h.now, h.outcome]), [["web-2", "0.1.0", NEXT, "upgraded"]]);

  t.deepEqual((await hostList(coordinator)).map((h) => [h.name, h.state, h.agentVersion]), [
    ["web-1", "online", "0.1.0"],
    ["web-2", "online", NEXT],
    ["web-3", "online", "0.1.0"],
  ]);
  const table = await coordinator.cli(["hosts"]);
  t.is(table.exitCode, 0, table.stderr);
  for (const [name, version, ring] of [["web-1", "0.1.0", "main"], ["web-2", NEXT, "canary"], ["web-3", "0.1.0", "main"]] as const) {
    t.regex(table.stdout, new RegExp(`^${name} .* online .* ${version.replaceAll(".", "\\.")} +ring=${ring},role=geoip `, "m"), `${name} shows agent ${version}:\n${table.stdout}`);
  }

  // A blue/green deploy across the mixed fleet, then a rollback, while the load goes on.
  // Every host switched to `color` serving `release`, as the command and each proxy say.
  const servesEverywhere = async (args: string[], color: string, release: string) => {
    const result = await coordinator.cliJson<DeployJson>(args);
    t.is(result.exitCode, 0, `${result.stdout}\n${result.stderr}`);
    t.deepEqual(result.json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release]), installed.map((h) => [h.name, "succeeded", color, release]));
    for (const address of addresses) t.like(await getThroughProxy(address, PORTS.listen), { status: 200, version: release });
    await load.completed(20);
  };
  await servesEverywhere(["deploy", spec, "--release", "v2"], "green", "v2");
  await servesEverywhere(["rollback", "geoip"], "blue", "v1");

  const reports = await Promise.all(load.runs.map((r) => r.stop()));
  for (const [i, r] of reports.entries()) {
    t.log(`web-${i + 1}: ${r.requests} requests, ${r.failed} failed, ${r.socketErrors} socket errors, answers ${JSON.stringify(r.answers)}`);
    t.deepEqual(r.failures, [], `no failed request through web-${i + 1}`);
    t.is(r.socketErrors, 0);
    t.true((r.answers.v1 ?? 0) > 0 && (r.answers.v2 ?? 0) > 0, `web-${i + 1}'s clients saw both releases`);
  }
  // Still mixed at the end: nothing the deploys did moved an agent.
  t.deepEqual((await hostList(coordinator)).map((h) => h.agentVersion), ["0.1.0", NEXT, "0.1.0"]);
});
