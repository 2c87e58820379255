import test from "ava";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";
import { appProcessesUnder, hostProcesses } from "./harness/host-processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };
/** Every step of the local transaction, and the instant after nginx switched but before the agent wrote so down. */
const STEPS = ["preflight", "fetch", "start", "health", "switch", "switched", "drain"];

for (const step of STEPS) {
  test.serial(`an agent SIGKILLed at "${step}" comes back with its proxy on a healthy instance, no orphan process, and the next deploy works`, async (t) => {
    const fleet = await startFleet(t, { hosts: 1 });
    const agent = fleet.agents[0]!;
    const spec = writeExampleSpec(fleet.dir, PORTS);
    const v1 = await fleet.coordinator.cli(["deploy", spec, "--release", "v1", "--json"]);
    t.is(v1.exitCode, 0, v1.stderr);

    // Restart the agent with the fault armed, then deploy v2 into it.
    await agent.process.kill("SIGTERM");
    agent.options.env = { CUTOVER_FAULT_KILL_AT: step };
    agent.start();
    await agent.online();
    const deploying = fleet.coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
    t.is((await agent.process.exited).signal, "SIGKILL", `the agent died at ${step}`);

    // The rollout waits for the host; the restarted agent finishes or reverts the step and answers from that.
    agent.options.env = {};
    agent.start();
    await agent.online();
    const before = ["preflight", "fetch", "start", "health", "switch"].includes(step);
    const v2 = await deploying;
    t.is(v2.exitCode, before ? 1 : 0, `${v2.stdout}${v2.stderr}`);
    if (before) t.regex(v2.stdout, /ERR_AGENT_RESTARTED/);
    const answer = await getThroughProxy(fleet.addresses[0]!, PORTS.listen);
    t.is(answer.status, 200, "the proxy points at a healthy instance");
    t.is(answer.version, before ? "v1" : "v2", before ? "reverted to v1" : "kept the switch to v2");
    const instances = hostProcesses(agent.options.stateDir).filter((p) => p.kind === "instance").map((p) => p.label).sort();
    t.deepEqual(instances, before ? ["geoip/blue"] : ["geoip/blue", "geoip/green"], "the live instance (and the warm old one after a switch) only");
    t.is(appProcessesUnder(agent.options.stateDir).length, instances.length, "no orphan app process");

    const v3 = await fleet.coordinator.cli(["deploy", spec, "--release", "v3", "--json"]);
    t.is(v3.exitCode, 0, v3.stdout + v3.stderr);
    t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v3");
  });
}
