import test from "ava";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";
import { mulberry32 } from "./harness/seeded-random.js";

/**
 * The coordinator is SIGKILLed at a seeded random moment of a rollout across
 * HOSTS hosts and restarted: the rollout must complete, every host must end on
 * a healthy release, no step may run twice, and a retrying client sees no
 * failed request. `npm run test:faults` runs 20 seeds; `npm test` a few.
 */
const HOSTS = 10;
const RUNS = Number(process.env.CUTOVER_FAULT_RUNS ?? 3);
const PORTS = { listen: 8080, blue: 7001, green: 7002 };

async function finished(fleet: Fleet, id: string): Promise<{ state: string; hosts: { name: string; outcome: string; release: string | null; error?: string | null }[] }> {
  for (;;) {
    const response = await fetch(`${fleet.coordinator.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${fleet.coordinator.adminToken}` } });
    const text = await response.text(); // the stream ends once the deployment has
    const end = /event: end\ndata: (.*)\n/.exec(text);
    if (end) return JSON.parse(end[1]!);
  }
}

test.serial(`coordinator SIGKILLed at random points of a ${HOSTS}-host rollout (${RUNS} seeded runs): every rollout completes, every host serves a healthy release, no step twice, 0 failed requests`, async (t) => {
  const fleet = await startFleet(t, { hosts: HOSTS });
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, batch: 2 });
  const first = await fleet.coordinator.cli(["deploy", spec, "--release", "r0", "--json"]);
  t.is(first.exitCode, 0, first.stderr);
  const load = loadThroughProxies(t, fleet.addresses, PORTS.listen, { retry: true, concurrency: 1 });
  const baseSeed = Number(process.env.CUTOVER_FAULT_SEED ?? 20261127);
  let kills = 0;
  for (let i = 1; i <= RUNS; i++) {
    const seed = baseSeed + i;
    const random = mulberry32(seed);
    const release = `r${i}`;
    const started = await fleet.coordinator.cli(["deploy", spec, "--release", release, "--detach", "--json"]);
    t.is(started.exitCode, 0, started.stderr);
    const { id } = JSON.parse(started.stdout) as { id: string };
    const delay = Math.floor(random() * 3000);
    await new Promise((resolve) => setTimeout(resolve, delay)); // the fault's moment: a seeded random point of the rollout, not a wait for an event
    await fleet.coordinator.restart("SIGKILL");
    kills++;
    const result = await finished(fleet, id);
    const why = result.state === "succeeded" ? "" : ` (${result.hosts.filter((h) => h.error).map((h) => `${h.name}: ${h.error}`).join("; ") || "no host error"})`;
    t.log(`seed ${seed}: killed ${delay} ms into the rollout of ${release}; it ended ${result.state}${why}`);
    t.true(["succeeded", "rolled_back"].includes(result.state), `seed ${seed}: completes or rolls back: ${result.state} ${JSON.stringify(result.hosts)}`);
    const answers = await Promise.all(fleet.addresses.map((a) => getThroughProxy(a, PORTS.listen)));
    t.true(answers.every((a) => a.status === 200), `seed ${seed}: every host serves a healthy release`);
    const expected = result.state === "succeeded" ? [release] : [release, `r${i - 1}`];
    t.true(answers.every((a) => expected.includes(String(a.version))), `seed ${seed}: ${answers.map((a) => a.version).join(",")}`);
    for (const agent of fleet.agents) {
      const starts = agent.process.lines.filter((l) => l.includes(`starting ${release} on`)).length;
      t.is(starts, 1, `seed ${seed}: ${agent.options.name} started ${release} ${starts} times`);
    }
  }
  const reports = await Promise.all(load.runs.map((r) => r.stop()));
  const requests = reports.reduce((n, r) => n + r.requests, 0);
  const failed = reports.reduce((n, r) => n + r.failed, 0);
  t.log(`faults injected: ${kills} coordinator kills; requests sent: ${requests}; failed: ${failed}`);
  t.deepEqual(reports.flatMap((r) => r.failures), []);
});
