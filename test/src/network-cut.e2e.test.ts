import test from "ava";
import { createServer, connect, type Socket } from "node:net";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startAgent, startCoordinator } from "./harness/fleet.js";
import { CUTOVER_BIN, spawnWatched, tempDir } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

/** A TCP relay between one agent and the coordinator that a test can cut and restore: the network between them. */
async function relay(target: URL) {
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
    close: () => server.close(),
  };
}

test.serial("a network cut mid-rollout: the host finishes its swap locally, the rollout waits for it, and completes when the link is back", async (t) => {
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s"]);
  const link = await relay(new URL(coordinator.url));
  t.teardown(() => link.close());
  const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  // web-1 reaches the coordinator only through the relay (the agent reads nothing but the URL from it).
  const cutHost = await startAgent(t, { ...coordinator, url: link.url } as typeof coordinator, { name: "web-1", address: `${base}.11`, labels: "role=geoip", token: await coordinator.enrollmentToken() });
  const otherHost = await startAgent(t, coordinator, { name: "web-2", address: `${base}.12`, labels: "role=geoip", token: await coordinator.enrollmentToken() });
  await Promise.all([cutHost.online(), otherHost.online()]);
  const ports = { listen: 8080, blue: 7001, green: 7002 };
  const dir = tempDir(t);
  const v1 = await coordinator.cli(["deploy", writeExampleSpec(dir, { ...ports, batch: 2 }), "--release", "v1", "--json"]);
  t.is(v1.exitCode, 0, v1.stderr);

  const slow = writeExampleSpec(dir, { ...ports, batch: 2, appArgs: ["--slow-start", "1500"] }, "slow.yml");
  const deploying = spawnWatched("deploy", CUTOVER_BIN, ["deploy", slow, "--release", "v2"], { CUTOVER_URL: coordinator.url, CUTOVER_TOKEN: coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent" });
  const mark = cutHost.process.mark();
  await cutHost.process.waitForLine(/health gate for green/, mark);
  link.cut();
  await cutHost.process.waitForLine(/v2 live on green/, mark);
  t.is((await getThroughProxy(`${base}.11`, ports.listen)).version, "v2", "the cut-off host finished its swap by itself");
  await deploying.waitForLine(/web-1\s+unreachable mid-step: waiting for it to come back/);
  t.is(deploying.child.exitCode, null, "the rollout waits rather than guessing");

  link.restore();
  const exit = await deploying.exited;
  t.is(exit.code, 0, deploying.lines.slice(-12).join("\n"));
  t.true(deploying.lines.some((l) => /web-1\s+back: asking for the step's outcome/.test(l)));
  t.true(deploying.lines.some((l) => /web-1\s+succeeded\s+green\s+v2/.test(l)));
  t.is((await getThroughProxy(`${base}.12`, ports.listen)).version, "v2");
});
