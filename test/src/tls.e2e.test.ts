import test from "ava";
import { startCoordinator } from "./harness/fleet.js";
import { AGENT_BIN, CUTOVER_BIN, runCli, spawnWatched, tempDir } from "./harness/processes.js";

async function tlsCoordinator(t: Parameters<typeof startCoordinator>[0]) {
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s", "--tls"]);
  const line = await coordinator.process.waitForLine(/^TLS certificate fingerprint sha256:/);
  return { coordinator, fingerprint: line.split(" ").at(-1)! };
}

const cli = (coordinator: { url: string; adminToken: string }, args: string[], fingerprint?: string) =>
  runCli(args, { CUTOVER_URL: coordinator.url, CUTOVER_TOKEN: coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent", CUTOVER_FINGERPRINT: fingerprint ?? "" });

test.serial("with --tls the coordinator serves https and wss; agents and the CLI pin its certificate's fingerprint", async (t) => {
  const { coordinator, fingerprint } = await tlsCoordinator(t);
  t.regex(coordinator.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  t.regex(fingerprint, /^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  const token = (await cli(coordinator, ["token", "create"], fingerprint)).stdout.trim();
  t.regex(token, /^cte_/);
  const agent = spawnWatched("agent", AGENT_BIN, [
    "--coordinator", coordinator.url, "--coordinator-fingerprint", fingerprint, "--token", token,
    "--state-dir", tempDir(t), "--name", "web-1", "--address", "127.0.0.71", "--nginx", "managed", "--config", "/dev/null",
  ]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/coordinator link .*to=online why=enrolled/);
  t.regex(agent.lines.find((l) => /connecting/.test(l)) ?? "", /wss:\/\/127\.0\.0\.1:\d+\/v1\/agent/);

  const hosts = await cli(coordinator, ["hosts", "--json"], fingerprint);
  t.is(hosts.exitCode, 0, hosts.stderr);
  t.deepEqual((JSON.parse(hosts.stdout) as { name: string; state: string }[]).map((h) => [h.name, h.state]), [["web-1", "online"]]);

  const untrusted = await cli(coordinator, ["hosts"]);
  t.is(untrusted.exitCode, 69, "unreachable: its certificate is not trusted");
  t.regex(untrusted.stderr, /TLS certificate is not trusted here .*CUTOVER_FINGERPRINT/);
  const wrong = await cli(coordinator, ["hosts"], `sha256:${"AB:".repeat(31)}AB`);
  t.is(wrong.exitCode, 69, "unreachable: not the pinned certificate");
  t.regex(wrong.stderr, /not the pinned sha256:AB:AB/);
});

test.serial("an agent pinning another fingerprint refuses the coordinator and never says Hello", async (t) => {
  const { coordinator, fingerprint } = await tlsCoordinator(t);
  // A real token (it names the coordinator's key), so only the certificate pin can refuse.
  const token = (await cli(coordinator, ["token", "create"], fingerprint)).stdout.trim();
  const agent = spawnWatched("agent", AGENT_BIN, [
    "--coordinator", coordinator.url, "--coordinator-fingerprint", `sha256:${"00:".repeat(31)}00`, "--token", token,
    "--state-dir", tempDir(t), "--name", "web-1", "--address", "127.0.0.72", "--nginx", "managed", "--config", "/dev/null",
  ]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/coordinator certificate does not match the pinned fingerprint; not talking to it/);
  t.false(agent.lines.some((l) => /to=online|to=handshaking/.test(l)));
  t.false(coordinator.process.lines.some((l) => /refused agent|agent session/.test(l)), "the coordinator never saw a Hello");
});

test.serial("plain http/ws is refused off loopback unless explicitly allowed", async (t) => {
  const server = spawnWatched("coordinator", CUTOVER_BIN, ["server", "--data-dir", tempDir(t), "--listen", "0.0.0.0:0"]);
  const exit = await server.exited;
  t.is(exit.code, 64, "bad input: a setting that would serve in the clear");
  t.true(server.lines.some((l) => /refusing plain HTTP on 0\.0\.0\.0: .*add --tls/.test(l)));

  const agent = spawnWatched("agent", AGENT_BIN, ["--coordinator", "http://192.0.2.10:7400", "--token", "x", "--state-dir", tempDir(t), "--name", "a", "--config", "/dev/null"]);
  t.is((await agent.exited).code, 78);
  t.true(agent.lines.some((l) => /refusing plain ws:\/\/ to 192\.0\.2\.10/.test(l)), "refused before any connection");
});
