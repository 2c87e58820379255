import test from "ava";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };

/** Resolves once nothing accepts connections on the proxy (nginx has shut down). */
async function waitUntilDown(address: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      await getThroughProxy(address, PORTS.listen);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // polling a port: no event says nginx is gone
  }
  throw new Error("nginx still answers");
}

test.serial("nginx killed under the agent: the next deploy starts it again, says so, and serves the new release", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const agent = fleet.agents[0]!;
  const spec = writeExampleSpec(fleet.dir, PORTS);
  t.is((await fleet.coordinator.cli(["deploy", spec, "--release", "v1", "--json"])).exitCode, 0);
  const pid = Number(readFileSync(join(agent.options.stateDir, "nginx", "nginx.pid"), "utf8"));
  process.kill(pid, "SIGTERM"); // nginx's fast shutdown: the master stops its workers and exits
  await waitUntilDown(fleet.addresses[0]!);

  const mark = agent.process.mark();
  const v2 = await fleet.coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(v2.exitCode, 0, v2.stdout + v2.stderr);
  await agent.process.waitForLine(/the managed nginx is not running: starting it again/, mark);
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v2");
});

// Reload mode: a live switch changes no config, so there is nothing for nginx -t to refuse.
test.serial("nginx config made invalid by hand: the agent refuses to switch with nginx's message, keeps serving, and switches once it is fixed", async (t) => {
  const fleet = await startFleet(t, { hosts: 1, switchMode: "reload" });
  const agent = fleet.agents[0]!;
  const spec = writeExampleSpec(fleet.dir, PORTS);
  t.is((await fleet.coordinator.cli(["deploy", spec, "--release", "v1", "--json"])).exitCode, 0);
  const broken = join(agent.options.stateDir, "nginx", "sites", "hand-edit.conf");
  writeFileSync(broken, "this is not nginx config\n");

  const refused = await fleet.coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(refused.exitCode, 1);
  const host = (JSON.parse(refused.stdout) as { hosts: { error: string }[] }).hosts[0]!;
  t.regex(host.error, /ERR_NGINX_TEST_FAILED/);
  t.regex(host.error, /\[emerg\] .*hand-edit\.conf/, "nginx's own message, naming the broken file");
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v1", "still serving v1");

  rmSync(broken);
  const fixed = await fleet.coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(fixed.exitCode, 0, fixed.stdout + fixed.stderr);
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v2");
});
