import test from "ava";
import { readEvents } from "@cutover/coordinator";
import { jsonError } from "./harness/cli-error.js";
import { startAgent, startCoordinator } from "./harness/fleet.js";

interface HostJson {
  name: string;
  address: string;
  state: string;
  heartbeatOverdueMs: number;
  labels: Record<string, string>;
  lastSeen: string;
  agentVersion: string;
  resources: { memAvailableBytes: number; memTotalBytes: number; diskFreeBytes: number; cpuLoadPercent: number };
}

async function hostsJson(coordinator: Awaited<ReturnType<typeof startCoordinator>>): Promise<HostJson[]> {
  const result = await coordinator.cli(["hosts", "--json"]);
  if (result.exitCode !== 0) throw new Error(`cutover hosts failed (${result.exitCode}): ${result.stderr}`);
  return JSON.parse(result.stdout) as HostJson[];
}

test.serial("three real agents on 127.0.0.11–13 enroll and show as online with their resources and labels", async (t) => {
  const coordinator = await startCoordinator(t);
  const agents = [];
  for (const [i, zone] of [[1, "a"], [2, "b"], [3, "c"]] as const) {
    const agent = await startAgent(t, coordinator, {
      name: `web-${i}`,
      address: `127.0.0.1${i}`,
      labels: `role=geoip,zone=${zone}`,
      token: await coordinator.enrollmentToken(),
    });
    agents.push(agent);
  }
  await Promise.all(agents.map((a) => a.online()));

  const hosts = await hostsJson(coordinator);
  t.deepEqual(
    hosts.map((h) => [h.name, h.address, h.state, h.labels]),
    [
      ["web-1", "127.0.0.11", "online", { role: "geoip", zone: "a" }],
      ["web-2", "127.0.0.12", "online", { role: "geoip", zone: "b" }],
      ["web-3", "127.0.0.13", "online", { role: "geoip", zone: "c" }],
    ],
  );
  for (const host of hosts) {
    t.true(host.resources.memAvailableBytes > 0, `${host.name} reports available memory`);
    t.true(host.resources.memTotalBytes >= host.resources.memAvailableBytes);
    t.true(host.resources.diskFreeBytes > 0, `${host.name} reports free disk`);
    t.true(host.resources.cpuLoadPercent >= 0 && host.resources.cpuLoadPercent <= 100);
    t.is(host.agentVersion, "0.1.0");
    t.false(Number.isNaN(Date.parse(host.lastSeen)));
  }

  const table = await coordinator.cli(["hosts"]);
  t.is(table.exitCode, 0);
  t.regex(table.stdout, /^NAME\s+ADDRESS\s+STATE/);
  t.regex(table.stdout, /web-2\s+127\.0\.0\.12\s+online/);
});

test.serial("a killed agent's host goes unreachable and comes back online, without re-enrolling, when it returns", async (t) => {
  const coordinator = await startCoordinator(t);
  const agent = await startAgent(t, coordinator, { name: "web-1", address: "127.0.0.21", token: await coordinator.enrollmentToken() });
  await agent.process.waitForLine(/to=online why=enrolled/);

  const mark = coordinator.process.mark();
  await agent.process.kill("SIGKILL");
  await coordinator.process.waitForLine(/host unreachable host=web-1/, mark);
  t.deepEqual((await hostsJson(coordinator)).map((h) => [h.name, h.state]), [["web-1", "unreachable"]]);

  agent.start(); // same state dir; its token is spent, so only its key can get it in
  await agent.process.waitForLine(/to=online why=authenticated/);
  t.deepEqual((await hostsJson(coordinator)).map((h) => [h.name, h.state]), [["web-1", "online"]]);
});

test.serial("GET /v1/hosts/events pushes the host list at once, again as heartbeats arrive, and when a host goes unreachable", async (t) => {
  const coordinator = await startCoordinator(t);
  const agent = await startAgent(t, coordinator, { name: "web-1", address: "127.0.0.21", token: await coordinator.enrollmentToken() });
  await agent.process.waitForLine(/to=online why=enrolled/);
  const abort = new AbortController();
  t.teardown(() => abort.abort());
  const response = await fetch(`${coordinator.url}/v1/hosts/events`, { headers: { authorization: `Bearer ${coordinator.adminToken}` }, signal: abort.signal });
  t.is(response.status, 200);
  t.is(response.headers.get("content-type"), "text/event-stream");
  const events = readEvents(response.body!);
  const next = async (): Promise<HostJson[]> => {
    const { value } = await events.next();
    if (value?.event === "message" && value.data === "") return next(); // a keep-alive comment
    t.is(value?.event, "hosts");
    return JSON.parse(value!.data) as HostJson[];
  };
  const first = await next();
  t.deepEqual(first.map((h) => [h.name, h.state]), [["web-1", "online"]]);
  const beat = await next();
  t.true(Date.parse(beat[0]!.lastSeen) > Date.parse(first[0]!.lastSeen), "pushed again by the next heartbeat");
  await agent.process.kill("SIGKILL");
  let seen = await next();
  while (seen[0]!.state !== "unreachable") seen = await next();
  t.deepEqual(seen.map((h) => [h.name, h.state]), [["web-1", "unreachable"]]);
});

test.serial("a frozen agent shows late while its heartbeats are overdue, unreachable once a ping goes unanswered for the ping timeout, and online again once it thaws", async (t) => {
  const coordinator = await startCoordinator(t);
  const agent = await startAgent(t, coordinator, { name: "web-1", address: "127.0.0.22", token: await coordinator.enrollmentToken() });
  await agent.online();

  const mark = coordinator.process.mark();
  process.kill(agent.process.pid, "SIGSTOP"); // the socket stays open; heartbeats and pongs stop
  t.teardown(() => {
    try {
      process.kill(agent.process.pid, "SIGCONT");
    } catch {}
  });
  await coordinator.process.waitForLine(/host late: heartbeats overdue.* host=web-1 from=online to=late/, mark);
  const late = await hostsJson(coordinator);
  t.is(late[0]?.state, "late", "a host whose heartbeats are overdue is late, not cut");
  t.true(late[0]!.heartbeatOverdueMs > 0);
  // The product's ping timeout (15 s) after the first unanswered ping (up to one ping interval, 5 s, in).
  await coordinator.process.waitForLine(/agent session host=web-1 .*to=closed why="no answer to a ping for \d+ s \(ping timeout 15 s\)"/, mark, 40_000);
  t.deepEqual((await hostsJson(coordinator)).map((h) => h.state), ["unreachable"]);

  const agentMark = agent.process.mark();
  process.kill(agent.process.pid, "SIGCONT");
  await agent.online(agentMark);
  await coordinator.process.waitForLine(/agent session host=web-1 .*to=online/, mark);
  t.deepEqual((await hostsJson(coordinator)).map((h) => h.state), ["online"]);
});

test.serial("agents reconnect with the same identity after the coordinator restarts", async (t) => {
  const coordinator = await startCoordinator(t);
  const agents = await Promise.all(
    ["web-1", "web-2"].map(async (name, i) => startAgent(t, coordinator, { name, address: `127.0.0.3${i + 1}`, token: await coordinator.enrollmentToken() })),
  );
  await Promise.all(agents.map((a) => a.online()));
  const marks = agents.map((a) => a.process.mark());

  await coordinator.restart("SIGKILL");
  await Promise.all(agents.map((a, i) => a.process.waitForLine(/to=online why=authenticated/, marks[i])));

  const hosts = await hostsJson(coordinator);
  t.deepEqual(hosts.map((h) => [h.name, h.state]), [["web-1", "online"], ["web-2", "online"]]);
  t.false(coordinator.process.lines.some((l) => l.includes("enrolled new host")), "the restarted coordinator enrolled no one anew");
});

test.serial("an agent refused for good exits with code 2 and says why", async (t) => {
  const coordinator = await startCoordinator(t);
  const token = await coordinator.enrollmentToken();
  const first = await startAgent(t, coordinator, { name: "web-1", address: "127.0.0.41", token });
  await first.online();
  const second = await startAgent(t, coordinator, { name: "web-2", address: "127.0.0.42", token });
  const exit = await second.process.exited;
  t.is(exit.code, 2);
  t.true(second.process.lines.some((l) => /refused this agent: the enrollment token was already used.*ENROLL_TOKEN_USED/.test(l)));
  await coordinator.process.waitForLine(/refused agent name=web-2 .*code=ENROLL_TOKEN_USED/);
});

test.serial("the CLI says what to do when it has no token or cannot reach the coordinator", async (t) => {
  const coordinator = await startCoordinator(t);
  const noToken = await coordinator.cli(["hosts"], "");
  t.is(noToken.exitCode, 64, "bad input: the CLI's settings have no token");
  t.regex(noToken.stderr, /no API token: set CUTOVER_TOKEN/);
  const noTokenJson = await coordinator.cli(["hosts", "--json"], "");
  t.is(noTokenJson.exitCode, 64);
  t.like(jsonError(noTokenJson), { code: "ERR_USAGE" });
  t.regex(jsonError(noTokenJson).message, /^no API token: set CUTOVER_TOKEN/);
  const badToken = await coordinator.cli(["hosts"], "cta_wrong");
  t.is(badToken.exitCode, 77, "denied: an unknown token");
  t.regex(badToken.stderr, /unknown or revoked \(ERR_UNAUTHENTICATED\)/);
  const badTokenJson = await coordinator.cli(["hosts", "--json"], "cta_wrong");
  t.is(badTokenJson.exitCode, 77);
  t.like(jsonError(badTokenJson), { code: "ERR_UNAUTHENTICATED" });
  t.regex(jsonError(badTokenJson).message, /unknown or revoked \(ERR_UNAUTHENTICATED\)$/);
  await coordinator.process.kill("SIGKILL");
  const down = await coordinator.cli(["hosts"]);
  t.is(down.exitCode, 69, "unreachable");
  t.regex(down.stderr, /cannot reach the coordinator at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
  const downJson = await coordinator.cli(["hosts", "--json"]);
  t.is(downJson.exitCode, 69);
  t.like(jsonError(downJson), { code: "ERR_UNREACHABLE" });
  t.regex(jsonError(downJson).message, /^cannot reach the coordinator at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
});
