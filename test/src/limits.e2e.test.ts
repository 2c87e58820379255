import test from "ava";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse, stringify } from "yaml";
import { existsSync } from "node:fs";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";
import { getThroughProxy } from "./harness/through-proxy.js";
import { hostProcesses } from "./harness/host-processes.js";

const LISTEN = 8080;
const PORTS = { listen: LISTEN, blue: 7001, green: 7002 };

function withLimits(path: string, limits: Record<string, unknown>): string {
  const spec = parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  writeFileSync(path, stringify({ ...spec, limits }));
  return path;
}

test.serial("a release that allocates past its memory limit is killed, and the deploy reports memory limit exceeded for that host", async (t) => {
  const app = `lim-${randomBytes(3).toString("hex")}`;
  // Runs after the fleet's teardown (teardowns run last-registered first): the instances are gone by then.
  t.teardown(async () => {
    await sleep(200);
    for (const parent of ["/sys/fs/cgroup/cutover", "/sys/fs/cgroup/memory/cutover", "/sys/fs/cgroup/cpu/cutover"].filter((p) => existsSync(p))) {
      for (const name of readdirSync(parent).filter((n) => n.startsWith(`${app}-`))) {
        try {
          rmdirSync(join(parent, name));
        } catch (error) {
          console.error(`left ${join(parent, name)}: ${(error as Error).message}`);
        }
      }
    }
  });
  const fleet = await startFleet(t, { hosts: 1 });
  const good = withLimits(writeExampleSpec(fleet.dir, { ...PORTS, app, deadline: "30s", appArgs: ["--hog-memory", "16"] }), { memory: "128M", cpu: 1 });
  const v1 = await fleet.coordinator.cli(["deploy", good, "--release", "v1", "--json"]);
  t.is(v1.exitCode, 0, v1.stdout + v1.stderr);
  const bad = withLimits(writeExampleSpec(fleet.dir, { ...PORTS, app, deadline: "30s", appArgs: ["--hog-memory", "200"] }, "bad.yml"), { memory: "64M" });
  const result = await fleet.coordinator.cli(["deploy", bad, "--release", "v2", "--json"]);
  t.is(result.exitCode, 1);
  const json = JSON.parse(result.stdout) as { status: string; hosts: { name: string; outcome: string; error: string | null }[] };
  t.log(json.hosts[0]!.error);
  t.is(json.hosts[0]!.outcome, "failed");
  t.regex(json.hosts[0]!.error ?? "", /^memory limit exceeded \(limit 64 MiB\): .* green \(v2\) was killed by the kernel before it passed its health gate.*\(ERR_LIMITS_MEMORY_EXCEEDED\)$/);
  t.is((await getThroughProxy(fleet.addresses[0]!, LISTEN)).version, "v1");
});

test.serial("a memory-limited live instance is adopted by a restarted agent, still inside its cgroup", async (t) => {
  const app = `lim-${randomBytes(3).toString("hex")}`;
  t.teardown(async () => {
    await sleep(200);
    for (const parent of ["/sys/fs/cgroup/cutover", "/sys/fs/cgroup/memory/cutover", "/sys/fs/cgroup/cpu/cutover"].filter((p) => existsSync(p))) {
      for (const name of readdirSync(parent).filter((n) => n.startsWith(`${app}-`))) {
        try {
          rmdirSync(join(parent, name));
        } catch (error) {
          console.error(`left ${join(parent, name)}: ${(error as Error).message}`);
        }
      }
    }
  });
  const fleet = await startFleet(t, { hosts: 1 });
  const agent = fleet.agents[0]!;
  const spec = withLimits(writeExampleSpec(fleet.dir, { ...PORTS, app, deadline: "30s", appArgs: ["--hog-memory", "16"] }), { memory: "128M", cpu: 1 });
  const v1 = await fleet.coordinator.cli(["deploy", spec, "--release", "v1", "--json"]);
  t.is(v1.exitCode, 0, v1.stdout + v1.stderr);
  const [blue] = hostProcesses(agent.options.stateDir).filter((p) => p.kind === "instance");
  const cgroupOf = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, "utf8");
  t.regex(cgroupOf(blue!.pid), new RegExp(`:/cutover/${app}-blue$`, "m"));
  await agent.process.kill("SIGKILL");
  agent.start();
  await agent.online();
  const [after] = hostProcesses(agent.options.stateDir).filter((p) => p.kind === "instance");
  t.is(after!.pid, blue!.pid, "adopted, not started again");
  t.false(agent.process.lines.some((l) => /the live instance is not running/.test(l)));
  const v2 = await fleet.coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(v2.exitCode, 0, v2.stdout + v2.stderr);
  t.is((await getThroughProxy(fleet.addresses[0]!, LISTEN)).version, "v2");
});
