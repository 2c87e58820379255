import test from "ava";
import { CloseCode, encodeEnvelope, MAX_FRAME_BYTES, ProtocolErrorCode } from "@cutover/protocol";
import { inProcessCoordinator, type InProcessCoordinator } from "./harness/in-process.js";
import { newKey, RawAgent } from "./harness/raw-agent.js";

/** A well-behaved agent that answers pings; the point is that it keeps working. */
async function goodAgent(ctx: InProcessCoordinator): Promise<RawAgent> {
  const token = (await ctx.api("POST", "/v1/tokens/enrollment", { body: {} })).body.token;
  const agent = await RawAgent.connect(ctx.coordinator.url);
  const outcome = await agent.handshake({ name: "good", key: newKey(), token });
  if (outcome.body !== "welcome") throw new Error("good agent was refused");
  agent.answerPings();
  return agent;
}

async function goodAgentStillServes(t: { deepEqual(a: unknown, b: unknown, m?: string): void }, ctx: InProcessCoordinator): Promise<void> {
  const ping = await ctx.api("POST", "/v1/hosts/ping", { body: { hosts: ["good"] } });
  t.deepEqual(ping.body.map((r: { name: string; ok: boolean }) => [r.name, r.ok]), [["good", true]], "the well-behaved agent still answers");
}

// The product's handshake timeout (10 s): a shorter one closes a slow client with 4408 on a busy
// machine before its bad frame is read. Rate limits are lowered so a flood is quick to send.
const LIMITS = { maxFramesPerSec: 50, frameBurst: 100 };

const cases: [string, (bad: RawAgent, ctx: InProcessCoordinator) => Promise<void>, number, string][] = [
  ["garbage bytes", async (bad) => bad.sendRaw(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), CloseCode.ProtocolError, ProtocolErrorCode.DecodeFailed],
  [
    "a truncated frame",
    async (bad) => {
      const whole = encodeEnvelope({ event: { kind: "step", message: "x".repeat(100) } });
      bad.sendRaw(whole.subarray(0, whole.length - 10));
    },
    CloseCode.ProtocolError,
    ProtocolErrorCode.DecodeFailed,
  ],
  ["a text frame", async (bad) => bad.sendRaw("hello?", false), CloseCode.UnsupportedData, ProtocolErrorCode.TextFrame],
  ["an oversized frame", async (bad) => bad.sendRaw(new Uint8Array(MAX_FRAME_BYTES + 1)), CloseCode.MessageTooBig, ""],
  ["a Heartbeat before Hello", async (bad) => bad.sendEnvelope({ heartbeat: { resources: {} } }), CloseCode.ProtocolError, ProtocolErrorCode.UnexpectedMessage],
  ["a Hello without a key", async (bad) => bad.sendEnvelope({ hello: { protocolVersion: 1, name: "x" } }), CloseCode.ProtocolError, ProtocolErrorCode.InvalidField],
  [
    // Cut off at the first frame that is not a Hello; the authenticated flood is tested below.
    "a flood of frames before Hello",
    async (bad) => {
      for (let i = 0; i < 1000; i++) bad.sendRaw(encodeEnvelope({ event: { kind: "flood" } }));
    },
    CloseCode.ProtocolError,
    ProtocolErrorCode.UnexpectedMessage,
  ],
  ["a handshake that never comes", async () => {}, CloseCode.HandshakeTimeout, ProtocolErrorCode.HandshakeTimeout],
];

for (const [what, misbehave, closeCode, errorCode] of cases) {
  test(`a client sending ${what} is closed with ${closeCode} while others keep being served`, async (t) => {
    const ctx = await inProcessCoordinator(t, LIMITS);
    const good = await goodAgent(ctx);
    const bad = await RawAgent.connect(ctx.coordinator.url);
    await misbehave(bad, ctx);
    const closed = await bad.closed;
    t.is(closed.code, closeCode);
    if (errorCode) {
      t.true(closed.reason.startsWith(errorCode), `close reason names ${errorCode}: ${closed.reason}`);
      t.true(ctx.logs.some((l) => l.includes("protocol error") && l.includes(`code=${errorCode}`)), "one log line says why");
    }
    await goodAgentStillServes(t, ctx);
    good.close();
  });
}

test("an authenticated agent flooding frames is cut off; it is marked unreachable and others are unaffected", async (t) => {
  const ctx = await inProcessCoordinator(t, LIMITS);
  const good = await goodAgent(ctx);
  const token = (await ctx.api("POST", "/v1/tokens/enrollment", { body: {} })).body.token;
  const noisy = await RawAgent.connect(ctx.coordinator.url);
  await noisy.handshake({ name: "noisy", key: newKey(), token });
  for (let i = 0; i < 1000; i++) noisy.sendEnvelope({ heartbeat: { resources: { memTotalBytes: i } } });
  const closed = await noisy.closed;
  t.is(closed.code, CloseCode.RateLimited);
  t.true(closed.reason.startsWith(ProtocolErrorCode.RateLimited));
  const hosts = await ctx.api("GET", "/v1/hosts");
  t.deepEqual(
    hosts.body.map((h: { name: string; state: string }) => [h.name, h.state]),
    [["good", "online"], ["noisy", "unreachable"]],
  );
  await goodAgentStillServes(t, ctx);
  good.close();
});

test("a message kind from a newer agent is logged and ignored, not fatal", async (t) => {
  const ctx = await inProcessCoordinator(t, LIMITS);
  const good = await goodAgent(ctx);
  // Field 99 of Envelope, length-delimited, empty: a oneof case this version does not know.
  good.sendRaw(Buffer.from([0x9a, 0x06, 0x00]));
  await goodAgentStillServes(t, ctx);
  t.true(ctx.logs.some((l) => l.includes("ignoring unknown message kind")));
  good.close();
});
