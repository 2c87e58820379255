import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { appProcessesUnder } from "./harness/host-processes.js";
import { loadThroughProxies } from "./harness/through-proxy.js";
import { repoRoot, spawnWatched } from "./harness/processes.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };
/** The app's own traffic through its proxy: a busy service, bounded so the test ends. */
const APP_LOAD = { concurrency: 4, ratePerSec: 400 };

interface DeployJson {
  status: string;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

async function cliJson(fleet: Fleet, args: string[]): Promise<{ exitCode: number | null; json: DeployJson; output: string }> {
  const { exitCode, json, stdout, stderr } = await fleet.coordinator.cliJson<DeployJson>(args);
  return { exitCode, json, output: `exit ${exitCode}\n${stdout}\n${stderr}` };
}

/** Niceness of a process (field 19 of /proc/<pid>/stat). */
function niceness(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

test.serial("a host whose two cores are saturated by its own traffic and a CPU hog stays reachable, deploys v2 and rolls back, with 0 failed requests", async (t) => {
  const fleet = await startFleet(t, { hosts: 1, switchMode: "reload" });
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, deadline: "60s" });
  const v1 = await cliJson(fleet, ["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.output);

  const coordinatorMark = fleet.coordinator.process.mark();
  const load = loadThroughProxies(t, fleet.addresses, PORTS.listen, { retry: true, ...APP_LOAD });
  await load.completed(50);
  // Two busy threads at normal priority beside the app's load: both cores are taken.
  const hog = spawnWatched("cpu-hog", join(repoRoot, "scripts", "cpu-hog.mjs"), ["--workers", "2", "--seconds", "300"]);
  t.teardown(() => hog.kill("SIGKILL"));
  await hog.waitForLine(/^cpu-hog: 2 busy thread/);

  const v2 = await cliJson(fleet, ["deploy", spec, "--release", "v2"]);
  t.is(v2.exitCode, 0, v2.output);
  t.deepEqual(v2.json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release]), [["web-1", "succeeded", "green", "v2"]], v2.output);
  await load.completed(200);

  const [app] = appProcessesUnder(fleet.agents[0]!.options.stateDir);
  t.true(app !== undefined && niceness(app) > niceness(fleet.agents[0]!.process.pid), "the app runs below the agent");

  const rollback = await cliJson(fleet, ["rollback", "geoip"]);
  t.is(rollback.exitCode, 0, rollback.output);
  t.deepEqual(rollback.json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release]), [["web-1", "succeeded", "blue", "v1"]], rollback.output);
  await load.completed(200);
  await hog.kill("SIGKILL");

  const [report] = await Promise.all(load.runs.map((r) => r.stop()));
  const coordinatorLines = fleet.coordinator.process.lines.slice(coordinatorMark);
  const late = coordinatorLines.filter((line) => /host late: .*host=web-1/.test(line)).length;
  t.log(`${report!.requests} requests in ${(report!.durationMs / 1000).toFixed(1)} s, ${report!.failed} failed, ${report!.socketErrors} socket errors, ${report!.retries} retries, answers ${JSON.stringify(report!.answers)}; web-1 shown late ${late} time(s)`);
  t.deepEqual(report!.failures, []);
  t.is(report!.failed, 0);
  t.true((report!.answers.v1 ?? 0) > 0 && (report!.answers.v2 ?? 0) > 0, "both releases answered");
  t.deepEqual(
    coordinatorLines.filter((line) => /host unreachable host=web-1|agent session host=web-1 .*to=closed/.test(line)),
    [],
    "the host never showed unreachable",
  );
});
