/**
 * Agent-side fuzz: the agent's CoordinatorLink (imported from the agent's
 * build: the package index does not export it) with a real CommandDispatcher
 * behind it, against a fake coordinator that completes the handshake
 * (Challenge → Hello → Welcome) and then sends mutated coordinator frames.
 *
 * An oracle says, for each frame, what DESIGN §4 makes the link do: close the
 * session with the frame's error code (and reconnect), stop for good on a
 * permanent Refusal, answer a Challenge with a correctly signed Hello, answer
 * each Command exactly once with the right status, or ignore it. What must
 * hold: no uncaught exception or unhandled rejection; no process warning; the
 * link always reconnects; after the last session no timer of the link is left
 * running.
 */
import test from "ava";
import { createPublicKey, generateKeyPairSync, sign, verify } from "node:crypto";
import { performance } from "node:perf_hooks";
import { createLogger } from "@cutover/log";
import { CommandDispatcher } from "@cutover/agent";
import { CloseCode, decodeEnvelope, encodeEnvelope, helloProofBytes, MAX_FRAME_BYTES, ProtocolError, ProtocolErrorCode, v1, type cutover, type Envelope } from "@cutover/protocol";
import { CoordinatorLink } from "../../../agent/dist/session/coordinator-link.js";
import { AgentConnection, FakeCoordinator } from "./fake-coordinator.js";
import { BODY_KINDS, COORDINATOR_KINDS, fuzzFrame, LIVE_GEN, MUTATIONS, TAME_GEN, validFrame, type MixOptions } from "./frames.js";
import { exposeGc, guardProcess, MiB, settledHeap } from "./guard.js";
import { Rng, runSeed, subSeed } from "./prng.js";

const SEED = runSeed();
const seedHex = `0x${SEED.toString(16).padStart(8, "0")}`;
/** Coordinator frames sent to the link after the handshake (handshake frames come on top). */
const AGENT_FRAMES = Number(process.env.CUTOVER_FUZZ_AGENT_FRAMES ?? 6_000);
/** Time the link has to answer a Challenge or a Command, to close as told, or to reconnect. */
const ANSWER_TIMEOUT_MS = 5_000;
const Status = v1.CommandResult.Status;
const HEAP_GROWTH_TOLERANCE = 32 * 1024 * 1024;

const MIX: MixOptions = { kinds: COORDINATOR_KINDS, gen: LIVE_GEN, maxBytes: 64 * 1024, maxRepeat: 2_000 };
const MIX_ANY: MixOptions = { ...MIX, kinds: BODY_KINDS };

// ------------------------------------------------------------------ timers

interface IntervalTracker {
  /** Intervals created by the coordinator link and not cleared. */
  linkIntervals(): number;
  restore(): void;
}

/** Wraps setInterval/clearInterval to see which intervals the link leaves running (each one a heartbeat loop). */
function trackIntervals(): IntervalTracker {
  const realSet = globalThis.setInterval;
  const realClear = globalThis.clearInterval;
  const live = new Map<unknown, string>();
  globalThis.setInterval = ((...args: Parameters<typeof setInterval>) => {
    const handle = realSet(...args);
    live.set(handle, new Error().stack ?? "");
    return handle;
  }) as typeof setInterval;
  globalThis.clearInterval = ((handle?: Parameters<typeof clearInterval>[0]) => {
    live.delete(handle);
    realClear(handle);
  }) as typeof clearInterval;
  return {
    linkIntervals: () => [...live.values()].filter((stack) => stack.includes("coordinator-link")).length,
    restore() {
      globalThis.setInterval = realSet;
      globalThis.clearInterval = realClear;
      for (const handle of live.keys()) realClear(handle as NodeJS.Timeout);
    },
  };
}

// ------------------------------------------------------------------ the link

interface LinkStats {
  links: number;
  reports: number;
  welcomes: number;
  permanentRefusals: number;
  logs: string[];
}

function newIdentity() {
  const { privateKey } = generateKeyPairSync("ed25519");
  const { x } = privateKey.export({ format: "jwk" }) as { x: string };
  return { name: "fuzz-agent", publicKey: new Uint8Array(Buffer.from(x, "base64url")), enrolled: false, sign: (data: Uint8Array) => new Uint8Array(sign(null, data, privateKey)) };
}

/** A link wired like startAgent wires it: a CommandDispatcher answers commands (ping built in; other operations are UNSUPPORTED here). */
function startLink(url: string, identity: ReturnType<typeof newIdentity>, stats: LinkStats): CoordinatorLink {
  const log = createLogger("agent", { level: "debug", write: (line) => stats.logs.push(line) });
  const dispatcher = new CommandDispatcher(log.child("commands"));
  stats.links++;
  const link = new CoordinatorLink({
    url,
    identity,
    enrollmentToken: "cte_fuzz",
    address: "127.0.0.1",
    labels: { role: "fuzz" },
    capabilities: ["ping"],
    agentVersion: "fuzz",
    reconnectBaseMs: 1,
    reconnectCapMs: 20,
    handshakeTimeoutMs: 10_000,
    log: log.child("link"),
    report: async () => {
      stats.reports++;
      return { resources: { memTotalBytes: 1, memAvailableBytes: 1 }, instances: [] };
    },
    onWelcome: () => {
      stats.welcomes++;
      return true;
    },
    onCommand: (command, reply) => void dispatcher.dispatch(command).then(reply),
    onPermanentRefusal: () => stats.permanentRefusals++,
  });
  link.start();
  return link;
}

// ------------------------------------------------------------------ the oracle

/** What the link must do with one coordinator frame. */
type Reaction =
  | { close: number; reason?: string }
  | { stop: true }
  | { hello: Uint8Array }
  | { welcome: true }
  | { command: cutover.v1.Command }
  | "ignore";

function react(bytes: Uint8Array): Reaction {
  let envelope: Envelope;
  try {
    envelope = decodeEnvelope(bytes);
  } catch (error) {
    const e = error as ProtocolError;
    return { close: e.closeCode, reason: e.code };
  }
  switch (envelope.body) {
    case "challenge":
      return { hello: envelope.challenge!.nonce! };
    case "welcome":
      return { welcome: true };
    case "refusal":
      return envelope.refusal!.permanent ? { stop: true } : "ignore";
    case "command":
      return { command: envelope.command as cutover.v1.Command };
    default:
      // artifactChunk without a waiter, agent-only kinds, unknown kinds: logged and ignored.
      return "ignore";
  }
}

/** Statuses the dispatcher may answer a command sent now with: EXPIRED past its deadline (either, within 2 s of it), OK for ping, else UNSUPPORTED. */
function allowedStatuses(command: cutover.v1.Command): Set<number> {
  const now = Date.now();
  const operation = command.operation === "ping" ? Status.OK : Status.UNSUPPORTED;
  const out = new Set<number>();
  if (command.deadlineUnixMs < now + 2_000) out.add(Status.EXPIRED);
  if (command.deadlineUnixMs > now - 2_000) out.add(operation);
  return out;
}

// ------------------------------------------------------------------ sessions

type Variant = "normal" | "commands" | "mutated-handshake" | "text" | "oversized";
const VARIANTS: [number, Variant][] = [
  [72, "normal"],
  [14, "commands"],
  [8, "mutated-handshake"],
  [3, "text"],
  [3, "oversized"],
];

interface SessionResult {
  variant: Variant;
  frames: number;
  expected: string;
  actual: string;
  problems: string[];
  /** The link stopped for good (a permanent Refusal): the test starts a new one. */
  stopped: boolean;
}

function framesPerSession(r: Rng): number {
  return r.weighted<() => number>([
    [4, () => r.int(1, 5)],
    [3, () => r.int(6, 25)],
    [2, () => r.int(26, 80)],
  ])();
}

/** Plays one coordinator session against the link; checks each reaction the oracle predicts. */
/**
 * `memory` models the dispatcher's: statuses a command id may be answered
 * with (narrowed to the one seen once answered); reset with each new link.
 */
async function playSession(c: AgentConnection, r: Rng, variant: Variant, memory: Map<string, Set<number>>, link: () => CoordinatorLink): Promise<SessionResult> {
  const result: SessionResult = { variant, frames: 0, expected: "open", actual: "", problems: [], stopped: false };
  const nonces: Uint8Array[] = [];
  /** Commands sent while the link was online, with the statuses allowed when they were sent. */
  const commands: { command: cutover.v1.Command; allowed: Set<number>; first: boolean }[] = [];
  let online = false;
  let ending: { close: number; reason?: string } | { stop: true } | undefined;

  const play = async (bytes: Uint8Array, counted: boolean): Promise<void> => {
    const reaction = react(bytes);
    c.send(bytes);
    if (counted) result.frames++;
    if (reaction === "ignore") return;
    if ("close" in reaction || "stop" in reaction) {
      ending = reaction;
    } else if ("hello" in reaction) {
      nonces.push(reaction.hello);
      // The link answers with a Hello signed over exactly this nonce.
      const hello = await c.next((e) => e.body === "hello" && nonces.length > 0 && sameBytes(signedNonce(e.hello, nonces) ?? new Uint8Array(0), reaction.hello), ANSWER_TIMEOUT_MS);
      if (!hello) result.problems.push("no Hello signed over the Challenge's nonce");
    } else if ("welcome" in reaction) {
      online = true;
    } else {
      // Every decoded Command is dispatched (online or not) and its result remembered by id.
      const command = reaction.command;
      const fresh = allowedStatuses(command);
      const known = memory.get(command.commandId);
      // The dispatcher forgets the oldest results past REMEMBERED_RESULTS (1024): then a repeat runs afresh.
      const allowed = known ? new Set([...known, ...(memory.size >= 1_000 ? fresh : [])]) : fresh;
      if (!known) memory.set(command.commandId, new Set(fresh));
      // Only while online is the answer sent back (the link drops replies otherwise).
      if (online) commands.push({ command, allowed, first: !known });
    }
  };

  const handshake = async (mutateChallenge: boolean, mutateWelcome: boolean) => {
    const challenge = encodeEnvelope({ challenge: { nonce: r.bytes(32), protocolVersion: 1 } });
    await play(mutateChallenge ? mutate(r, challenge) : challenge, false);
    if (ending) return;
    const welcome = encodeEnvelope({ welcome: { hostId: "h-fuzz", heartbeatIntervalMs: r.int(100, 5_000), protocolVersion: 1, enrolled: r.chance(0.5) } });
    await play(mutateWelcome ? mutate(r, welcome) : welcome, false);
  };

  switch (variant) {
    case "normal": {
      // Well-formed coordinator frames with odd contents, and fuzz frames at a per-session rate (the first bad one ends the session).
      await handshake(false, false);
      const fuzzRate = r.weighted([[3, 0.03], [2, 0.15], [1, 0.6]] as const);
      for (let n = framesPerSession(r); n > 0 && !ending; n--) {
        await play(r.chance(fuzzRate) ? fuzzFrame(r, r.chance(0.8) ? MIX : MIX_ANY).bytes : validFrame(r, r.pick(COORDINATOR_KINDS), TAME_GEN).bytes, true);
      }
      break;
    }
    case "commands":
      // Well-formed commands (some with ids seen before), to check one answer per command with the right status.
      await handshake(false, false);
      for (let n = r.int(1, 30); n > 0 && !ending; n--) {
        let frame = validFrame(r, "command", TAME_GEN).bytes;
        if (memory.size > 0 && r.chance(0.1)) {
          const reuse = r.pick([...memory.keys()]);
          try {
            frame = encodeEnvelope({ command: { ...decodeEnvelope(frame).command!, commandId: reuse } });
          } catch {
            // A rare tame frame that does not decode: send it as it is.
          }
        }
        await play(frame, true);
      }
      break;
    case "mutated-handshake": {
      const which = r.pick(["challenge", "welcome", "both"] as const);
      await handshake(which !== "welcome", which !== "challenge");
      for (let n = framesPerSession(r); n > 0 && !ending; n--) await play(fuzzFrame(r, MIX).bytes, true);
      break;
    }
    case "text": {
      await handshake(false, false);
      const text = r.chance(0.5) ? Buffer.from(r.bytes(r.int(0, 64))) : Buffer.from("hello?");
      c.send(text, false);
      result.frames++;
      // ws refuses a text frame that is not UTF-8 (1007) before the link sees it.
      ending = Buffer.from(text.toString("utf8")).equals(text) ? { close: CloseCode.UnsupportedData, reason: ProtocolErrorCode.TextFrame } : { close: 1007 };
      break;
    }
    case "oversized":
      await handshake(false, false);
      c.send(r.bytes(MAX_FRAME_BYTES + r.int(1, 4096)));
      result.frames++;
      // The link's ws client enforces maxPayload: 1009 before any decode.
      ending = { close: CloseCode.MessageTooBig };
      break;
  }

  if (ending && "stop" in ending) {
    // A permanent Refusal: the link closes with 1001 and stops for good.
    result.expected = "stop (close 1001)";
    const closed = await withTimeout(c.closed, ANSWER_TIMEOUT_MS);
    result.actual = closed ? `close ${closed.code} ${closed.reason}; link ${link().state}` : "still open";
    result.stopped = link().state === "stopped";
    if (!closed || closed.code !== 1001 || !result.stopped) result.problems.push(`expected ${result.expected}, got ${result.actual}`);
  } else if (ending) {
    result.expected = `close ${ending.close}${ending.reason ? ` ${ending.reason}` : ""}`;
    const closed = await withTimeout(c.closed, ANSWER_TIMEOUT_MS);
    result.actual = closed ? `close ${closed.code} ${closed.reason}` : "still open";
    if (!closed || closed.code !== ending.close || (ending.reason && !closed.reason.startsWith(ending.reason))) result.problems.push(`expected ${result.expected}, got ${result.actual}`);
  } else {
    // Still open: every command sent while online is answered once, then a final ping proves the link works.
    for (const { command, allowed, first } of commands) {
      const answer = await c.next((e) => e.commandResult?.commandId === command.commandId, ANSWER_TIMEOUT_MS);
      if (!answer) {
        result.problems.push(`no CommandResult for ${JSON.stringify(command.commandId)} (${command.operation})`);
        continue;
      }
      const status = answer.commandResult!.status ?? Status.STATUS_UNSPECIFIED;
      if (!allowed.has(status)) result.problems.push(`command ${JSON.stringify(command.commandId)} (${command.operation}) answered ${status}, expected one of ${[...allowed]}`);
      if (first && status === Status.OK && command.ping && answer.commandResult!.pong?.payload !== command.ping.payload) result.problems.push("pong payload differs from ping payload");
      if (first) memory.set(command.commandId, new Set([status]));
    }
    if (online) {
      const finalId = `final-${r.uint32()}`;
      c.sendEnvelope({ command: { commandId: finalId, deadlineUnixMs: Date.now() + 30_000, ping: { payload: "still there?" } } });
      const pong = await c.next((e) => e.commandResult?.commandId === finalId, ANSWER_TIMEOUT_MS);
      if (pong?.commandResult?.status !== Status.OK) result.problems.push("the link did not answer the final ping");
      result.actual = pong ? "open, answered the final ping" : "open, silent";
    } else {
      result.actual = "open, never welcomed";
    }
    // End the session from the coordinator's side, one way or another; the link must reconnect.
    const how = r.pick(["close", "close-app", "terminate"] as const);
    if (how === "terminate") c.socket.terminate();
    else c.socket.close(how === "close" ? 1000 : 4000 + r.below(1000), "fuzz session over");
    await c.closed;
  }
  // Checks on everything the link sent, whatever the ending.
  if (c.undecodable.length) result.problems.push(`the link sent ${c.undecodable.length} frame(s) that do not decode: ${c.undecodable[0]}`);
  for (const e of c.received) {
    if (e.body === "hello" && !helloVerifies(e.hello, nonces)) result.problems.push("a Hello whose signature does not verify over any nonce of this session");
  }
  return result;
}

function mutate(r: Rng, frame: Uint8Array): Uint8Array {
  const name = r.pick(Object.keys(MUTATIONS));
  return MUTATIONS[name]!(r, frame, () => frame);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function helloVerifies(hello: cutover.v1.Hello.$Properties | null | undefined, nonces: Uint8Array[]): boolean {
  return signedNonce(hello, nonces) !== undefined;
}

/** The nonce (among those sent) a Hello's signature verifies over, if any. */
function signedNonce(hello: cutover.v1.Hello.$Properties | null | undefined, nonces: Uint8Array[]): Uint8Array | undefined {
  if (!hello?.publicKey || !hello.signature || !hello.name) return undefined;
  const { publicKey, signature, name } = hello;
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") }, format: "jwk" });
  return nonces.find((nonce) => verify(null, helloProofBytes(nonce, name, publicKey), key, signature));
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer!: NodeJS.Timeout;
  const result = await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  clearTimeout(timer);
  return result;
}

// ------------------------------------------------------------------ tests

test.serial(`agent link fuzz: ${AGENT_FRAMES} mutated coordinator frames (seed ${seedHex}); the link reconnects or ignores, answers as the protocol says, never crashes or leaks a timer`, async (t) => {
  t.timeout(90_000);
  const guard = guardProcess();
  const intervals = trackIntervals();
  t.teardown(() => {
    intervals.restore();
    guard.dispose();
  });
  const gc = exposeGc();
  const server = await FakeCoordinator.start();
  t.teardown(() => server.close());
  const identity = newIdentity();
  const stats: LinkStats = { links: 0, reports: 0, welcomes: 0, permanentRefusals: 0, logs: [] };
  let link = startLink(server.url, identity, stats);
  t.teardown(() => link.stop());
  const heapBefore = settledHeap(gc);
  const started = performance.now();

  const r = new Rng(subSeed(SEED, "agent"));
  let memory = new Map<string, Set<number>>();
  const sessions: SessionResult[] = [];
  let frames = 0;
  let distinctCommands = 0;
  let lostLink = false;
  while (frames < AGENT_FRAMES) {
    const c = await server.nextConnection(ANSWER_TIMEOUT_MS);
    if (!c) {
      lostLink = true;
      break;
    }
    const result = await playSession(c, r, r.weighted(VARIANTS), memory, () => link);
    sessions.push(result);
    frames += result.frames;
    if (result.stopped) {
      link.stop();
      link = startLink(server.url, identity, stats);
      distinctCommands += memory.size;
      memory = new Map();
    }
  }
  const fuzzMs = performance.now() - started;

  // A clean session at the end: the link still does the whole handshake and answers a ping.
  const last = await server.nextConnection(ANSWER_TIMEOUT_MS);
  let finalOk = false;
  if (last) {
    const nonce = new Uint8Array(32).fill(7);
    last.sendEnvelope({ challenge: { nonce, protocolVersion: 1 } });
    const hello = await last.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
    last.sendEnvelope({ welcome: { hostId: "h-fuzz", heartbeatIntervalMs: 60_000, protocolVersion: 1 } });
    last.sendEnvelope({ command: { commandId: "the-end", deadlineUnixMs: Date.now() + 30_000, ping: { payload: "bye" } } });
    const pong = await last.next((e) => e.commandResult?.commandId === "the-end", ANSWER_TIMEOUT_MS);
    finalOk = !!hello && helloVerifies(hello.hello, [nonce]) && pong?.commandResult?.pong?.payload === "bye";
  }
  link.stop();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const leaked = intervals.linkIntervals();
  const heapAfter = settledHeap(gc);

  const reconnects = stats.logs.filter((l) => /coordinator link .*to=connecting/.test(l)).length - stats.links;
  const byVariant: Record<string, Record<string, number>> = {};
  for (const s of sessions) {
    const key = s.expected.split(" ").slice(0, 3).join(" ");
    (byVariant[s.variant] ??= {})[key] = (byVariant[s.variant]![key] ?? 0) + 1;
  }
  const closeReasons: Record<string, number> = {};
  for (const line of stats.logs) {
    const code = /protocol error from coordinator; reconnecting code=(\S+)/.exec(line)?.[1];
    if (code) closeReasons[code] = (closeReasons[code] ?? 0) + 1;
  }
  const ignored = stats.logs.filter((l) => /ignoring (unknown message kind|message agents do not expect)/.test(l)).length;
  const handlerErrors = stats.logs.filter((l) => /failed to handle coordinator frame/.test(l));
  t.log(`seed ${seedHex} (replay: CUTOVER_FUZZ_SEED=${seedHex} npx ava test/dist/fuzz/agent-link.test.js)`);
  t.log(`frames: ${frames} fuzz frames over ${sessions.length} sessions (${server.connections} connections) in ${(fuzzMs / 1000).toFixed(1)} s`);
  t.log(`sessions by variant → expected ending: ${JSON.stringify(byVariant)}`);
  t.log(`link: ${reconnects} reconnects, ${stats.permanentRefusals} permanent refusals (${stats.links} links started), ${stats.welcomes} welcomes, ${ignored} frames logged and ignored; decode errors that closed the session: ${JSON.stringify(closeReasons)}`);
  t.log(`commands: ${distinctCommands + memory.size} distinct ids dispatched; handler errors logged: ${handlerErrors.length}${handlerErrors.length ? ` (${[...new Set(handlerErrors.map((l) => l.replace(/^\S+ /, "")))].slice(0, 3).join(" | ")})` : ""}`);
  t.log(`heap after GC: ${MiB(heapBefore)} before, ${MiB(heapAfter)} after; link intervals still running after stop(): ${leaked}`);
  if (guard.warnings.length) t.log(`process warnings: ${[...new Set(guard.warnings)].join("; ")}`);

  t.deepEqual(guard.problems, [], "no uncaught exception or unhandled rejection");
  t.false(lostLink, "the link always came back after a session ended");
  t.true(frames >= AGENT_FRAMES, `sent ${frames} ≥ ${AGENT_FRAMES} frames`);
  t.deepEqual(
    sessions.filter((s) => s.problems.length).map((s) => `${s.variant} (${s.frames} frames): ${s.problems.slice(0, 3).join("; ")}`),
    [],
    "every session went as the protocol says",
  );
  t.true(finalOk, "after the fuzz the link still handshakes and answers a ping");
  t.true(reconnects > 0 && Object.keys(closeReasons).length > 0, "the fuzz reached the decode-error path (and reconnects)");
  t.deepEqual([...new Set(guard.warnings)], [], "no process warning (a TimeoutOverflowWarning means a heartbeat timer fires every 1 ms)");
  t.is(leaked, 0, "no heartbeat interval of the link is left running after stop() (a second Welcome must not start a second heartbeat loop)");
  t.true(heapAfter - heapBefore < HEAP_GROWTH_TOLERANCE, `heap grew ${MiB(heapAfter - heapBefore)} (tolerance ${MiB(HEAP_GROWTH_TOLERANCE)})`);
});

/** The two findings of the fuzz above, as fixed cases that run whatever the seed. */
async function onlineLink(t: { teardown(fn: () => void | Promise<void>): void }, welcome: cutover.v1.Welcome.$Properties) {
  const guard = guardProcess();
  const intervals = trackIntervals();
  t.teardown(() => {
    intervals.restore();
    guard.dispose();
  });
  const server = await FakeCoordinator.start();
  t.teardown(() => server.close());
  const stats: LinkStats = { links: 0, reports: 0, welcomes: 0, permanentRefusals: 0, logs: [] };
  const link = startLink(server.url, newIdentity(), stats);
  t.teardown(() => link.stop());
  const c = (await server.nextConnection(ANSWER_TIMEOUT_MS))!;
  c.sendEnvelope({ challenge: { nonce: new Uint8Array(32), protocolVersion: 1 } });
  await c.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
  c.sendEnvelope({ welcome });
  await link.whenOnline();
  return { guard, intervals, server, stats, link, c };
}

test.serial("a Welcome with heartbeat_interval_ms above 2^31-1 does not make the agent heartbeat every millisecond", async (t) => {
  const { guard, c } = await onlineLink(t, { hostId: "h", heartbeatIntervalMs: 3_000_000_000, protocolVersion: 1 });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const heartbeats = c.received.filter((e) => e.body === "heartbeat").length;
  t.log(`${heartbeats} heartbeats in 300 ms; warnings: ${guard.warnings.join("; ") || "none"}`);
  t.true(heartbeats <= 3, `heartbeats in 300 ms: ${heartbeats} (a uint32 interval above 2^31-1 becomes 1 ms in Node's setInterval)`);
  t.deepEqual(guard.warnings, []);
});

test.serial("a second Welcome on an online session does not leave a heartbeat loop running after the link stops", async (t) => {
  const { intervals, link, c } = await onlineLink(t, { hostId: "h", heartbeatIntervalMs: 50, protocolVersion: 1 });
  c.sendEnvelope({ welcome: { hostId: "h", heartbeatIntervalMs: 50, protocolVersion: 1 } });
  await new Promise((resolve) => setTimeout(resolve, 100));
  link.stop();
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.is(intervals.linkIntervals(), 0, "heartbeat intervals of the link still running after stop()");
});
