import test from "ava";
import { once } from "node:events";
import type { cutover } from "@cutover/protocol";
import { inProcessCoordinator } from "./harness/in-process.js";
import { newKey, RawAgent } from "./harness/raw-agent.js";

// Timers as a small fleet would honestly run them: heartbeats every second, a ping every
// second, and a link cut only after a ping has gone unanswered for 5 s.
const FLEET = { heartbeatIntervalMs: 1_000, pingIntervalMs: 1_000, pingTimeoutMs: 5_000 };

async function enrolledAgent(c: Awaited<ReturnType<typeof inProcessCoordinator>>, name: string, options: { autoPong?: boolean } = {}) {
  const { status, body } = await c.api("POST", "/v1/tokens/enrollment", { body: {} });
  if (status !== 201) throw new Error(`token create: ${status}`);
  const agent = await RawAgent.connect(c.coordinator.url, options);
  const welcome = (await agent.handshake({ name, key: newKey(), token: body.token as string })).welcome as cutover.v1.Welcome;
  return { agent, hostId: welcome.hostId };
}

async function hostState(c: Awaited<ReturnType<typeof inProcessCoordinator>>, name: string): Promise<{ state: string; heartbeatOverdueMs: number }> {
  const { body } = await c.api("GET", "/v1/hosts");
  return (body as { name: string; state: string; heartbeatOverdueMs: number }[]).find((h) => h.name === name)!;
}

/** Resolves after the agent has answered `count` more pings. */
async function pingsAnswered(agent: RawAgent, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await once(agent.socket, "ping");
}

test("a host whose heartbeats stop while its link answers pings is late, not cut, and a command in flight on it completes", async (t) => {
  const c = await inProcessCoordinator(t, FLEET);
  const { agent, hostId } = await enrolledAgent(c, "busy-1");
  t.teardown(() => agent.close());
  // No heartbeat from here on: the agent's own loop is "busy"; its socket still answers pings.
  const pending = c.coordinator.fleet.sendCommand({ id: hostId, name: "busy-1" } as never, { ping: { payload: "busy-1" } }, 60_000);
  const command = (await agent.next("command")).command as cutover.v1.Command;

  await c.waitForLog(/host late: heartbeats overdue .*host=busy-1 from=online to=late/);
  const late = await hostState(c, "busy-1");
  t.is(late.state, "late");
  t.true(late.heartbeatOverdueMs > 0, "how late is shown");
  // Well past the ping timeout (5 s) with every ping answered: the session stays open.
  await pingsAnswered(agent, 8);
  t.is((await hostState(c, "busy-1")).state, "late");
  t.false(c.logs.some((line) => /to=closed/.test(line)), "the session was never cut");

  // The slow agent answers at last: the command in flight completes.
  agent.sendEnvelope({ commandResult: { commandId: command.commandId, status: 1, pong: { payload: "busy-1" } } });
  const result = await pending;
  t.is(result.pong?.payload, "busy-1");

  // And a heartbeat makes it on time again.
  agent.sendEnvelope({ heartbeat: { resources: { memTotalBytes: 1, memAvailableBytes: 1 } } });
  await c.waitForLog(/host on time again .*host=busy-1 from=late to=online/);
  t.is((await hostState(c, "busy-1")).state, "online");
});

test("a link that answers no ping is cut after the ping timeout: the host is unreachable and its command in flight fails", async (t) => {
  const c = await inProcessCoordinator(t, FLEET);
  const { agent, hostId } = await enrolledAgent(c, "dead-1", { autoPong: false });
  t.teardown(() => agent.close());
  const failed = c.coordinator.fleet
    .sendCommand({ id: hostId, name: "dead-1" } as never, { ping: { payload: "dead-1" } }, 60_000)
    .then(() => undefined, (error: Error & { code?: string }) => error);
  await agent.next("command");

  const cut = await c.waitForLog(/agent session .*host=dead-1 .*to=closed why="no answer to a ping for \d+ s \(ping timeout 5 s\)"/);
  t.truthy(cut);
  t.is((await failed)?.code, "ERR_HOST_DISCONNECTED");
  t.is((await hostState(c, "dead-1")).state, "unreachable");
  await agent.closed;
});

test("heartbeats on time keep a host online even when it answers no WebSocket ping: any frame shows the link is alive", async (t) => {
  const c = await inProcessCoordinator(t, FLEET);
  const { agent } = await enrolledAgent(c, "steady-1", { autoPong: false });
  t.teardown(() => agent.close());
  const beat = () => agent.sendEnvelope({ heartbeat: { resources: { memTotalBytes: 1, memAvailableBytes: 1 } } });
  // Answer each ping with a heartbeat instead of a pong, for longer than the ping timeout.
  agent.socket.on("ping", beat);
  await pingsAnswered(agent, 8);
  t.is((await hostState(c, "steady-1")).state, "online");
  t.false(c.logs.some((line) => /host=steady-1 .*to=(closed|late)/.test(line)));
});
