/**
 * Agent-side fuzz: the agent's CoordinatorLink and CommandVerifier (imported
 * from the agent's build: the package index does not export them) with a real
 * CommandDispatcher behind them, wired as startAgent wires them, against a fake
 * coordinator that completes the handshake (Challenge → Hello → Welcome with
 * its key) and then sends mutated, forged, replayed and well-signed frames.
 *
 * An oracle says, for each frame, what DESIGN §4–§5 make the agent do: close
 * the session with the frame's error code (and reconnect), refuse a Welcome
 * with a key other than the pinned one (4401), stop for good on a permanent
 * Refusal, answer a Challenge with a correctly signed Hello, answer each
 * Command once — REJECTED with the right code unless its signature verifies
 * and its sequence is new, else with the dispatcher's status — or ignore it. What must
 * hold: no uncaught exception or unhandled rejection; no process warning; the
 * link always reconnects; after the last session no timer of the link is left
 * running.
 */
import test from "ava";
import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { createLogger } from "@cutover/log";
import { CommandDispatcher } from "@cutover/agent";
import {
  CloseCode,
  decodeEnvelope,
  encodeEnvelope,
  helloProofBytes,
  MAX_FRAME_BYTES,
  ProtocolError,
  ProtocolErrorCode,
  signedCommandBytes,
  v1,
  type cutover,
  type Envelope,
} from "@cutover/protocol";
import { CommandVerifier } from "../../../agent/dist/session/command-verifier.js";
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
/** Longest the process may go without running a timer during the fuzz (a hang; generous for a machine busy with other suites). */
const MAX_STALL_MS = 3_000;

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

/**
 * Where link state dirs go: the verifier fsyncs coordinator.json after every
 * accepted command (~9 ms on this disk, ~0.04 ms on tmpfs), and the fuzz sends
 * a few thousand; the durability itself is not what is tested here.
 */
const STATE_ROOT = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

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

/** The fake coordinator's signing key and sequence clock (as fleet.sendCommand signs). */
class CoordinatorSigner {
  readonly publicKey: Uint8Array;
  private readonly privateKey: KeyObject;
  private sequence = 0;
  constructor() {
    const { privateKey } = generateKeyPairSync("ed25519");
    this.privateKey = privateKey;
    this.publicKey = new Uint8Array(Buffer.from((privateKey.export({ format: "jwk" }) as { x: string }).x, "base64url"));
  }

  /** The next sequence, above `floor` (a signed command may have carried any sequence the agent then accepted). */
  nextSequence(floor = 0): number {
    this.sequence = Math.max(this.sequence, floor) + 1;
    return this.sequence;
  }

  sign(bytes: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, bytes, this.privateKey));
  }

  /** A command frame exactly as the coordinator sends it: id, deadline, and the signed encoding of the whole command. */
  frame(command: cutover.v1.Command.$Properties, sequence = this.nextSequence()): Uint8Array {
    const inner = { ...command, sequence, signature: undefined, signed: undefined };
    const signed = signedCommandBytes(inner);
    return encodeEnvelope({ command: { commandId: inner.commandId, deadlineUnixMs: inner.deadlineUnixMs, signed, signature: this.sign(signed) } });
  }
}

/**
 * A link wired like startAgent wires it: the verifier pins the coordinator's key
 * at Welcome and opens every command; a CommandDispatcher answers what it lets
 * through (ping built in; other operations are UNSUPPORTED here: no apps, no nginx).
 */
function startLink(url: string, identity: ReturnType<typeof newIdentity>, stats: LinkStats, stateDir: string): CoordinatorLink {
  const log = createLogger("agent", { level: "debug", write: (line) => stats.logs.push(line) });
  const dispatcher = new CommandDispatcher(log.child("commands"));
  const verifier = new CommandVerifier(stateDir);
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
    onWelcome: (welcome) => {
      stats.welcomes++;
      return verifier.pin(welcome.coordinatorPublicKey);
    },
    onCommand: async (outer, reply) => {
      const opened = await verifier.open(outer);
      if (!opened.ok) {
        reply({ commandId: outer.commandId, status: Status.REJECTED, errorCode: opened.code, message: opened.message });
        return;
      }
      void dispatcher.dispatch(opened.command).then(reply);
    },
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
  | { rejected: string; commandId: string }
  | { command: cutover.v1.Command }
  | "ignore";

/** The oracle's picture of one link's trust state (a new link starts from an empty state dir). */
interface TrustModel {
  /** base64 of the pinned coordinator key, once a Welcome pinned one. */
  pinned?: string;
  lastSequence: number;
  /** Statuses each dispatched command id may be answered with (narrowed once answered). */
  memory: Map<string, Set<number>>;
}

function react(bytes: Uint8Array, trust: TrustModel): Reaction {
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
    case "welcome": {
      // Every Welcome goes through pin(): the first key is kept, another one refuses the session.
      const key = Buffer.from(envelope.welcome!.coordinatorPublicKey ?? []).toString("base64");
      trust.pinned ??= key;
      return key === trust.pinned ? { welcome: true } : { close: CloseCode.AuthRefused, reason: "coordinator key mismatch" };
    }
    case "refusal":
      return envelope.refusal!.permanent ? { stop: true } : "ignore";
    case "command":
      return openModel(envelope.command as cutover.v1.Command, trust);
    default:
      // artifactChunk without a waiter, agent-only kinds, unknown kinds: logged and ignored.
      return "ignore";
  }
}

/** CommandVerifier.open as the protocol describes it: signed by the pinned key, the inner command names the same id, its sequence is new. */
function openModel(outer: cutover.v1.Command, trust: TrustModel): Reaction {
  const rejected = (code: string): Reaction => ({ rejected: code, commandId: outer.commandId });
  if (trust.pinned === undefined || !outer.signed?.length) return rejected("ERR_COMMAND_UNSIGNED");
  let valid = false;
  try {
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(trust.pinned, "base64").toString("base64url") }, format: "jwk" });
    valid = verify(null, outer.signed, key, outer.signature);
  } catch {
    valid = false;
  }
  if (!valid) return rejected("ERR_COMMAND_BAD_SIGNATURE");
  let inner: cutover.v1.Command;
  try {
    inner = v1.Command.decode(outer.signed);
  } catch {
    return rejected("ERR_COMMAND_MALFORMED");
  }
  if (inner.commandId !== outer.commandId) return rejected("ERR_COMMAND_MALFORMED");
  const sequence = Number(inner.sequence);
  if (!(sequence > trust.lastSequence)) return rejected("ERR_COMMAND_REPLAYED");
  trust.lastSequence = sequence;
  return { command: inner };
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
  /** CommandResults received, by status name (and refusal code). */
  answers: Record<string, number>;
}

function framesPerSession(r: Rng): number {
  return r.weighted<() => number>([
    [4, () => r.int(1, 5)],
    [3, () => r.int(6, 25)],
    [2, () => r.int(26, 80)],
  ])();
}

/** One answer the link owes: which CommandResult satisfies it. */
interface Owed {
  commandId: string;
  what: string;
  accepts(result: cutover.v1.CommandResult.$Properties): boolean;
  /** For a first dispatch: narrows the dispatcher model to the status actually answered. */
  settle?(status: number): void;
}

/** Plays one coordinator session against the link; checks each reaction the oracle predicts. */
async function playSession(c: AgentConnection, r: Rng, variant: Variant, trust: TrustModel, signer: CoordinatorSigner, link: () => CoordinatorLink): Promise<SessionResult> {
  const result: SessionResult = { variant, frames: 0, expected: "open", actual: "", problems: [], stopped: false, answers: {} };
  const nonces: Uint8Array[] = [];
  /** Answers owed for commands sent while the link was online (it drops replies otherwise). */
  const owed: Owed[] = [];
  let online = false;
  let ending: { close: number; reason?: string } | { stop: true } | undefined;

  const play = async (bytes: Uint8Array, counted: boolean): Promise<void> => {
    const reaction = react(bytes, trust);
    c.send(bytes);
    if (counted) result.frames++;
    if (reaction === "ignore") return;
    if ("close" in reaction || "stop" in reaction) {
      ending = reaction;
    } else if ("hello" in reaction) {
      nonces.push(reaction.hello);
      // The link answers with a Hello signed over exactly this nonce.
      const hello = await c.next((e) => e.body === "hello" && sameBytes(signedNonce(e.hello, nonces) ?? new Uint8Array(0), reaction.hello), ANSWER_TIMEOUT_MS);
      if (!hello) result.problems.push("no Hello signed over the Challenge's nonce");
    } else if ("welcome" in reaction) {
      online = true;
    } else if ("rejected" in reaction) {
      if (online) owed.push({ commandId: reaction.commandId, what: `REJECTED ${reaction.rejected}`, accepts: (a) => a.status === Status.REJECTED && a.errorCode === reaction.rejected });
    } else {
      // Verified: dispatched (online or not), its result remembered by id.
      const command = reaction.command;
      const fresh = allowedStatuses(command);
      const known = trust.memory.get(command.commandId);
      // The dispatcher forgets the oldest results past REMEMBERED_RESULTS (1024): then a repeat runs afresh.
      const allowed = known ? new Set([...known, ...(trust.memory.size >= 1_000 ? fresh : [])]) : fresh;
      if (!known) trust.memory.set(command.commandId, new Set(fresh));
      if (online) {
        owed.push({
          commandId: command.commandId,
          what: `${command.operation} → one of ${[...allowed]}`,
          accepts: (a) => allowed.has(a.status ?? 0) && (known !== undefined || a.status !== Status.OK || !command.ping || a.pong?.payload === command.ping.payload),
          settle: known ? undefined : (status) => trust.memory.set(command.commandId, new Set([status])),
        });
      }
    }
  };

  const handshake = async (mutateChallenge: boolean, mutateWelcome: boolean) => {
    const challenge = encodeEnvelope({ challenge: { nonce: r.bytes(32), protocolVersion: 1 } });
    await play(mutateChallenge ? mutate(r, challenge) : challenge, false);
    if (ending) return;
    const welcome = encodeEnvelope({ welcome: { hostId: "h-fuzz", heartbeatIntervalMs: r.int(100, 5_000), protocolVersion: 1, enrolled: r.chance(0.5), coordinatorPublicKey: signer.publicKey } });
    await play(mutateWelcome ? mutate(r, welcome) : welcome, false);
  };

  /** A well-formed command (odd contents), as a decoded object. */
  const tameCommand = (): cutover.v1.Command.$Properties | undefined => {
    try {
      return decodeEnvelope(validFrame(r, "command", TAME_GEN).bytes).command ?? undefined;
    } catch {
      return undefined;
    }
  };
  const sign = (command: cutover.v1.Command.$Properties) => signer.frame(command, signer.nextSequence(trust.lastSequence));
  const sentSigned: Uint8Array[] = [];
  /** A command the coordinator signed: fresh, a replay, a reused id, an old sequence, signed garbage, or tampered with after signing. */
  const signedCommand = (): Uint8Array => {
    const command = tameCommand() ?? { commandId: `c-${r.uint32()}`, deadlineUnixMs: Date.now() + 10_000, ping: { payload: "p" } };
    const kind = r.weighted([
      [70, "fresh"],
      [8, "replay"],
      [7, "reused id"],
      [5, "old sequence"],
      [5, "signed garbage"],
      [5, "tampered"],
    ] as const);
    let frame: Uint8Array;
    switch (kind) {
      case "replay":
        if (sentSigned.length) return r.pick(sentSigned);
        frame = sign(command);
        break;
      case "reused id":
        frame = sign({ ...command, commandId: trust.memory.size ? r.pick([...trust.memory.keys()]) : command.commandId });
        break;
      case "old sequence":
        frame = signer.frame(command, Math.max(1, trust.lastSequence - r.int(0, 5)));
        break;
      case "signed garbage": {
        const garbage = r.chance(0.5) ? r.bytes(r.int(0, 64)) : mutate(r, v1.Command.encode({ ...command, sequence: signer.nextSequence(trust.lastSequence) }).finish());
        return encodeEnvelope({ command: { commandId: command.commandId, deadlineUnixMs: command.deadlineUnixMs, signed: garbage, signature: signer.sign(garbage) } });
      }
      case "tampered":
        return mutate(r, sign(command));
      case "fresh":
        frame = sign(command);
        break;
    }
    sentSigned.push(frame);
    return frame;
  };

  switch (variant) {
    case "normal": {
      // Well-formed coordinator frames with odd contents (half the commands properly signed), and fuzz
      // frames at a per-session rate (the first bad one ends the session).
      await handshake(false, false);
      const fuzzRate = r.weighted([[3, 0.03], [2, 0.15], [1, 0.6]] as const);
      for (let n = framesPerSession(r); n > 0 && !ending; n--) {
        const kind = r.pick(COORDINATOR_KINDS);
        let frame = r.chance(fuzzRate) ? fuzzFrame(r, r.chance(0.8) ? MIX : MIX_ANY).bytes : kind === "command" && r.chance(0.5) ? signedCommand() : validFrame(r, kind, TAME_GEN).bytes;
        // Most extra Welcomes present the coordinator's own key (a second Welcome); the others another key (refused, 4401).
        if (kind === "welcome" && r.chance(0.85)) frame = encodeEnvelope({ welcome: { hostId: "h-fuzz", heartbeatIntervalMs: r.int(100, 5_000), protocolVersion: 1, coordinatorPublicKey: signer.publicKey } });
        await play(frame, true);
      }
      break;
    }
    case "commands":
      // Signed commands (fresh, replayed, reordered, reused ids, tampered), to check one answer per command with the right status.
      await handshake(false, false);
      for (let n = r.int(1, 30); n > 0 && !ending; n--) await play(signedCommand(), true);
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
      ending ??= Buffer.from(text.toString("utf8")).equals(text) ? { close: CloseCode.UnsupportedData, reason: ProtocolErrorCode.TextFrame } : { close: 1007 };
      break;
    }
    case "oversized":
      await handshake(false, false);
      c.send(r.bytes(MAX_FRAME_BYTES + r.int(1, 4096)));
      result.frames++;
      // The link's ws client enforces maxPayload: 1009 before any decode.
      ending ??= { close: CloseCode.MessageTooBig };
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
    // Still open: every command sent while online is answered once as the oracle says, then a final ping proves the link works.
    const used = new Set<Envelope>();
    for (const debt of owed) {
      const answer = await c.next((e) => !used.has(e) && e.commandResult?.commandId === debt.commandId && debt.accepts(e.commandResult), ANSWER_TIMEOUT_MS);
      if (!answer) {
        const got = c.received.filter((e) => e.commandResult?.commandId === debt.commandId).map((e) => `${e.commandResult!.status} ${e.commandResult!.errorCode ?? ""}`);
        result.problems.push(`command ${JSON.stringify(debt.commandId)}: expected ${debt.what}, got [${got.join(", ")}]`);
        continue;
      }
      used.add(answer);
      debt.settle?.(answer.commandResult!.status ?? 0);
    }
    if (online) {
      const finalId = `final-${r.uint32()}`;
      const ping = sign({ commandId: finalId, deadlineUnixMs: Date.now() + 30_000, ping: { payload: "still there?" } });
      // Answered OK, unless a signed command of the session carried a sequence the next one cannot exceed (2^53).
      const expectOk = "command" in (react(ping, trust) as object);
      c.send(ping);
      const pong = await c.next((e) => e.commandResult?.commandId === finalId, ANSWER_TIMEOUT_MS);
      if (!pong || (expectOk && pong.commandResult?.status !== Status.OK)) result.problems.push(`the link did not answer the final ping (${pong?.commandResult?.errorCode ?? "no answer"})`);
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
  for (const e of c.received) {
    if (!e.commandResult) continue;
    const key = `${Status[e.commandResult.status ?? 0]}${e.commandResult.errorCode?.startsWith("ERR_COMMAND_") ? ` ${e.commandResult.errorCode}` : ""}`;
    result.answers[key] = (result.answers[key] ?? 0) + 1;
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
  const signer = new CoordinatorSigner();
  const stats: LinkStats = { links: 0, reports: 0, welcomes: 0, permanentRefusals: 0, logs: [] };
  /** Each link gets an empty state dir (nothing pinned yet) and a fresh trust model. */
  const stateDirs: string[] = [];
  t.teardown(() => stateDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const freshLink = () => {
    stateDirs.push(mkdtempSync(join(STATE_ROOT, "cutover-fuzz-agent-")));
    return { link: startLink(server.url, identity, stats, stateDirs.at(-1)!), trust: { lastSequence: 0, memory: new Map() } as TrustModel };
  };
  let { link, trust } = freshLink();
  t.teardown(() => link.stop());
  const heapBefore = settledHeap(gc);
  const started = performance.now();
  // The link runs in this process: a frame that hangs it shows as an event-loop stall.
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();

  const r = new Rng(subSeed(SEED, "agent"));
  const sessions: SessionResult[] = [];
  let frames = 0;
  let distinctCommands = 0;
  let lostLink = false;
  let firstOfLink = true;
  while (frames < AGENT_FRAMES) {
    const c = await server.nextConnection(ANSWER_TIMEOUT_MS);
    if (!c) {
      lostLink = true;
      break;
    }
    // A link's first session pins the coordinator's key, so it is a clean one.
    const result = await playSession(c, r, firstOfLink ? "normal" : r.weighted(VARIANTS), trust, signer, () => link);
    firstOfLink = false;
    sessions.push(result);
    frames += result.frames;
    if (result.stopped) {
      link.stop();
      distinctCommands += trust.memory.size;
      ({ link, trust } = freshLink());
      firstOfLink = true;
    }
  }
  const fuzzMs = performance.now() - started;
  stalls.disable();
  const maxStallMs = stalls.max / 1e6;

  // A clean session at the end: the link still does the whole handshake and answers a ping.
  const last = await server.nextConnection(ANSWER_TIMEOUT_MS);
  let finalOk = false;
  if (last) {
    const nonce = new Uint8Array(32).fill(7);
    last.sendEnvelope({ challenge: { nonce, protocolVersion: 1 } });
    const hello = await last.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
    last.sendEnvelope({ welcome: { hostId: "h-fuzz", heartbeatIntervalMs: 60_000, protocolVersion: 1, coordinatorPublicKey: signer.publicKey } });
    const ping = signer.frame({ commandId: "the-end", deadlineUnixMs: Date.now() + 30_000, ping: { payload: "bye" } }, signer.nextSequence(trust.lastSequence));
    // OK with its pong, unless a signed command of the run pushed the accepted sequence to where no next one fits (2^53).
    const expectOk = "command" in (react(ping, trust) as object);
    last.send(ping);
    const pong = await last.next((e) => e.commandResult?.commandId === "the-end", ANSWER_TIMEOUT_MS);
    finalOk = !!hello && helloVerifies(hello.hello, [nonce]) && !!pong && (!expectOk || pong.commandResult?.pong?.payload === "bye");
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
  const answers: Record<string, number> = {};
  for (const s of sessions) for (const [k, n] of Object.entries(s.answers)) answers[k] = (answers[k] ?? 0) + n;
  t.log(`command answers by status: ${JSON.stringify(answers)}`);
  t.log(`commands: ${distinctCommands + trust.memory.size} distinct ids dispatched after verification; handler errors logged: ${handlerErrors.length}${handlerErrors.length ? ` (${[...new Set(handlerErrors.map((l) => l.replace(/^\S+ /, "")))].slice(0, 3).join(" | ")})` : ""}`);
  t.log(`heap after GC: ${MiB(heapBefore)} before, ${MiB(heapAfter)} after; longest event-loop stall ${maxStallMs.toFixed(0)} ms; link intervals still running after stop(): ${leaked}`);
  if (guard.warnings.length) t.log(`process warnings: ${[...new Set(guard.warnings)].join("; ")}`);

  t.deepEqual(guard.problems, [], "no uncaught exception or unhandled rejection");
  t.true(maxStallMs < MAX_STALL_MS, `longest event-loop stall ${maxStallMs.toFixed(0)} ms < ${MAX_STALL_MS} ms`);
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
  const stateDir = mkdtempSync(join(STATE_ROOT, "cutover-fuzz-agent-"));
  const link = startLink(server.url, newIdentity(), stats, stateDir);
  t.teardown(() => {
    link.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
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
