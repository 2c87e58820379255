/**
 * Agent-side fuzz: the agent's CoordinatorLink and CommandVerifier (imported
 * from the agent's build: the package index does not export them) with a real
 * CommandDispatcher behind them, wired as startAgent wires them, against a fake
 * coordinator that completes the handshake (Challenge → Hello → a Welcome it
 * signs for the session) and then sends mutated, forged, replayed and
 * well-signed frames.
 *
 * An oracle says, for each frame, what the protocol and the trust rules (docs/architecture.md "Trust", docs/security.md) make the agent
 * do: close the session with the frame's error code (and reconnect); refuse
 * (4401 "coordinator not trusted") a Welcome that presents a key other than the
 * pinned one, or — before anything is pinned — a key other than the one the
 * enrollment token names, or whose signature does not verify over this
 * session's nonce, the host id and this agent's key, or that names another host
 * than the pinned one; stop for good on a permanent Refusal; answer a Challenge
 * with a correctly signed Hello; judge every Command as the verifier must
 * (signed by the pinned key, well-formed, signed for this host, for this
 * session, with a new sequence — in that order), and, online, answer it once:
 * REJECTED with that code, else with the dispatcher's status. The verifier's
 * verdict is checked for every command, online or not. What must hold: no
 * uncaught exception or unhandled rejection; no process warning; the link
 * always reconnects; after the last session no timer of the link is left
 * running.
 */
import test from "ava";
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
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
  enrollmentTokenKeyId,
  formatEnrollmentToken,
  helloProofBytes,
  MAX_FRAME_BYTES,
  ProtocolError,
  ProtocolErrorCode,
  RefusalCode,
  signedCommandBytes,
  v1,
  welcomeProofBytes,
  type cutover,
  type Envelope,
} from "@cutover/protocol";
import { CommandVerifier } from "../../../agent/dist/session/command-verifier.js";
import { CoordinatorLink } from "../../../agent/dist/session/coordinator-link.js";
import { CoordinatorUrls } from "../../../agent/dist/session/coordinator-urls.js";
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

/** What the verifier said of one command, in the order the link handed commands to it. */
interface Verdict {
  commandId: string;
  /** "ok", or the refusal code; "pending" until `settled`. */
  code: string;
  settled: Promise<void>;
}

interface LinkStats {
  links: number;
  reports: number;
  welcomes: number;
  permanentRefusals: number;
  /** Every verifier.open() of every link, in call order. */
  verdicts: Verdict[];
  logs: string[];
}

type Identity = ReturnType<typeof newIdentity>;

function newIdentity() {
  const { privateKey } = generateKeyPairSync("ed25519");
  const { x } = privateKey.export({ format: "jwk" }) as { x: string };
  return { name: "fuzz-agent", publicKey: new Uint8Array(Buffer.from(x, "base64url")), enrolled: false, sign: (data: Uint8Array) => new Uint8Array(sign(null, data, privateKey)) };
}

/** base64url sha256 of a raw key: the key id an enrollment token names (worked out here, not with the agent's helper). */
function keyIdOf(rawKey: Uint8Array): string {
  return createHash("sha256").update(rawKey).digest("base64url");
}

/** Ed25519 verification by a raw public key; false for a key or signature that is not one. */
function ed25519Verifies(rawKey: Uint8Array, data: Uint8Array, signature: Uint8Array | null | undefined): boolean {
  try {
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(rawKey).toString("base64url") }, format: "jwk" });
    return verify(null, data, key, signature ?? new Uint8Array(0));
  } catch {
    return false;
  }
}

/** Where a command is signed for: the host and the session (Challenge nonce) named inside the signed bytes. */
interface Addressed {
  hostId: string;
  sessionNonce: Uint8Array;
}

/** A coordinator's signing key and sequence clock (as fleet.sendCommand and AgentSession.onHello sign). */
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

  /** A command frame exactly as the coordinator sends it: id, deadline, and the signed encoding of the whole command, naming its host and session. */
  frame(command: cutover.v1.Command.$Properties, to: Addressed, sequence = this.nextSequence()): Uint8Array {
    const inner = { ...command, sequence, hostId: to.hostId, sessionNonce: to.sessionNonce, signature: undefined, signed: undefined };
    const signed = signedCommandBytes(inner);
    return encodeEnvelope({ command: { commandId: inner.commandId, deadlineUnixMs: inner.deadlineUnixMs, signed, signature: this.sign(signed) } });
  }

  /**
   * The Welcome fields a coordinator sends: its key, and its signature over the
   * WelcomeProof of `proof` (the session's nonce, the host id, the agent's key).
   */
  welcome(proof: { nonce: Uint8Array; hostId: string; agentPublicKey: Uint8Array }, heartbeatIntervalMs: number, enrolled = false): cutover.v1.Welcome.$Properties {
    const signature = this.sign(welcomeProofBytes(proof));
    return { hostId: proof.hostId, heartbeatIntervalMs, protocolVersion: 1, enrolled, coordinatorPublicKey: this.publicKey, signature };
  }
}

/** The fake coordinator's side of one link: the id it gave the host, and every Challenge nonce it sent the link (for stale replays). */
interface CoordinatorSide {
  signer: CoordinatorSigner;
  /** Another coordinator's key (an impostor, or a relay with its own key). */
  impostor: CoordinatorSigner;
  hostId: string;
  agentPublicKey: Uint8Array;
  nonces: Uint8Array[];
  /** Signed command frames sent on earlier sessions (a relay's recordings). */
  recorded: Uint8Array[];
}

/**
 * A link wired like startAgent wires it: the verifier checks every Welcome
 * (pinning the key the enrollment token names, and the host id) and opens every
 * command for the session it arrived on; a CommandDispatcher answers what it
 * lets through (ping built in; other operations are UNSUPPORTED here: no apps,
 * no nginx). `coordinatorKeyId` undefined: a token that names no key, as for an
 * enrolled agent whose pin was removed on purpose (it trusts the first key).
 */
function startLink(url: string, identity: Identity, stats: LinkStats, stateDir: string, coordinatorKeyId: string | undefined): CoordinatorLink {
  const log = createLogger("agent", { level: "debug", write: (line) => stats.logs.push(line) });
  const dispatcher = new CommandDispatcher(log.child("commands"));
  const verifier = new CommandVerifier(stateDir);
  const enrollmentToken = coordinatorKeyId === undefined ? "cte_fuzz" : formatEnrollmentToken("fuzz", coordinatorKeyId);
  // As startAgent: the key id the token names, when nothing is pinned yet (a fresh state dir here).
  const enrollmentKeyId = verifier.pinned ? undefined : enrollmentTokenKeyId(enrollmentToken);
  stats.links++;
  const link = new CoordinatorLink({
    coordinators: new CoordinatorUrls({ configured: [url], rules: { allowPlain: false, fingerprintFlag: false }, stateDir, log: log.child("link") }),
    identity,
    enrollmentToken,
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
    onWelcome: async (welcome, session) => {
      stats.welcomes++;
      return (await verifier.welcome(welcome, session, enrollmentKeyId)).ok;
    },
    onCommand: async (outer, reply, sessionNonce) => {
      // Recorded at the call, so verdicts keep the order the link handed commands over.
      const verdict: Verdict = { commandId: outer.commandId, code: "pending", settled: Promise.resolve() };
      stats.verdicts.push(verdict);
      const opening = verifier.open(outer, sessionNonce);
      verdict.settled = opening.then(
        (o) => void (verdict.code = o.ok ? "ok" : o.code),
        (error: Error) => void (verdict.code = `threw ${error.message}`),
      );
      const opened = await opening;
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

/** Why the oracle says a Welcome is refused (counted, so a run shows each rule was reached). */
type WelcomeRefusal = "key not the pinned one" | "key not the token's" | "signature" | "host id not the pinned one";

/** What the link must do with one coordinator frame. */
type Reaction =
  | { close: number; reason?: string; welcomeRefused?: WelcomeRefusal }
  | { stop: true }
  | { hello: Uint8Array }
  | { welcome: true }
  | { rejected: string; commandId: string }
  | { command: cutover.v1.Command }
  | "ignore";

/** The oracle's picture of one link's trust state (a new link starts from an empty state dir). */
interface TrustModel {
  /** This agent's public key (the one its Hello presents). */
  agentPublicKey: Uint8Array;
  /** The coordinator key id the link's enrollment token names; undefined: the token names none (trust the first key). */
  enrollmentKeyId?: string;
  /** base64 of the pinned coordinator key, once a Welcome pinned one. */
  pinned?: string;
  /** The host id pinned with it (the first good Welcome's). */
  hostId?: string;
  /** The Challenge nonce of the session the link is on; undefined on a new connection until its Challenge. */
  sessionNonce?: Uint8Array;
  /** The session nonce the last good Welcome was signed for: commands are accepted only on that session. */
  welcomedNonce?: Uint8Array;
  lastSequence: number;
  /** Statuses each dispatched command id may be answered with (narrowed once answered). */
  memory: Map<string, Set<number>>;
  /**
   * Ids in `memory` whose dispatch no answer has confirmed: a session that closed
   * first may have ended before the agent even verified the command (its verdicts
   * are then a prefix of the predicted ones), so a later repeat may run afresh.
   */
  unconfirmed: Set<string>;
}

/**
 * A new connection of the link: a session with no Challenge yet, so nothing can
 * be signed for it (the cases at the end of this file replay the last one's).
 */
function newSession(trust: TrustModel): void {
  trust.sessionNonce = undefined;
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
      // The session's nonce from now on (a second Challenge replaces it: its Welcome must follow).
      trust.sessionNonce = envelope.challenge!.nonce!;
      return { hello: envelope.challenge!.nonce! };
    case "welcome":
      return welcomeModel(envelope.welcome as cutover.v1.Welcome, trust);
    case "refusal":
      // NOT_LEADER is never permanent: the link ends the session to go to a leader (this one's own URL, trusted, or the next).
      if (envelope.refusal!.code === RefusalCode.NotLeader) return { close: CloseCode.Normal, reason: "not the leader" };
      return envelope.refusal!.permanent ? { stop: true } : "ignore";
    case "command":
      return openModel(envelope.command as cutover.v1.Command, trust);
    default:
      // artifactChunk without a waiter, agent-only kinds, unknown kinds: logged and ignored.
      return "ignore";
  }
}

/**
 * CommandVerifier.welcome as issue 11 describes it: the key is the pinned one
 * (or, before any pin, the one the enrollment token names); the signature
 * verifies with that key over this session's nonce, the host id, this
 * agent's key and the Welcome's epoch and members; the host id is the pinned one. The first good Welcome pins key
 * and host id; every good one makes its session the one commands are accepted on.
 */
function welcomeModel(welcome: cutover.v1.Welcome, trust: TrustModel): Reaction {
  const refused = (why: WelcomeRefusal): Reaction => ({ close: CloseCode.AuthRefused, reason: "coordinator not trusted", welcomeRefused: why });
  const presented = welcome.coordinatorPublicKey ?? new Uint8Array(0);
  const key = Buffer.from(presented).toString("base64");
  if (trust.pinned !== undefined && key !== trust.pinned) return refused("key not the pinned one");
  if (trust.pinned === undefined && trust.enrollmentKeyId !== undefined && keyIdOf(presented) !== trust.enrollmentKeyId) return refused("key not the token's");
  // No Challenge on this connection yet: there is no session the Welcome could be signed for.
  if (trust.sessionNonce === undefined || !ed25519Verifies(presented, welcomeProofBytes({ nonce: trust.sessionNonce, hostId: welcome.hostId, agentPublicKey: trust.agentPublicKey, epoch: Number(welcome.epoch ?? 0), members: welcome.members ?? [] }), welcome.signature)) return refused("signature");
  if (trust.hostId !== undefined && welcome.hostId !== trust.hostId) return refused("host id not the pinned one");
  trust.pinned ??= key;
  trust.hostId ??= welcome.hostId;
  trust.welcomedNonce = trust.sessionNonce;
  return { welcome: true };
}

/**
 * CommandVerifier.open as the protocol describes it: signed by the pinned key,
 * the inner command names the same id, it is signed for the pinned host, for
 * the session it arrived on (one a good Welcome was signed for), and its sequence is new.
 */
function openModel(outer: cutover.v1.Command, trust: TrustModel): Reaction {
  const rejected = (code: string): Reaction => ({ rejected: code, commandId: outer.commandId });
  if (trust.pinned === undefined || !outer.signed?.length) return rejected("ERR_COMMAND_UNSIGNED");
  if (!ed25519Verifies(Buffer.from(trust.pinned, "base64"), outer.signed, outer.signature)) return rejected("ERR_COMMAND_BAD_SIGNATURE");
  let inner: cutover.v1.Command;
  try {
    inner = v1.Command.decode(outer.signed);
  } catch {
    return rejected("ERR_COMMAND_MALFORMED");
  }
  if (inner.commandId !== outer.commandId) return rejected("ERR_COMMAND_MALFORMED");
  if (inner.hostId !== trust.hostId) return rejected("ERR_COMMAND_WRONG_HOST");
  const session = trust.sessionNonce;
  if (session === undefined || trust.welcomedNonce === undefined || !sameBytes(inner.sessionNonce, session) || !sameBytes(session, trust.welcomedNonce)) return rejected("ERR_COMMAND_WRONG_SESSION");
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

/** "impostor" is not drawn: it is the first session of some links, before their pin (see the test). */
type Variant = "normal" | "commands" | "mutated-handshake" | "text" | "oversized" | "impostor";
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
  /** The oracle's verdict on every command of the session (each checked against the verifier's), by code. */
  verdicts: Record<string, number>;
  /** Welcomes the oracle accepted, and why it refused the one that ended the session. */
  welcomes: number;
  welcomeRefused?: WelcomeRefusal;
}

/** The Welcomes the fake coordinator sends: its own for this session, or one the agent must refuse. */
type WelcomeKind = "good" | "another key" | "unsigned" | "forged" | "stale nonce" | "another host" | "another agent";
/** Most nonces of earlier sessions kept for stale replays. */
const MAX_RECORDED = 200;

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
async function playSession(c: AgentConnection, r: Rng, variant: Variant, trust: TrustModel, side: CoordinatorSide, stats: LinkStats, link: () => CoordinatorLink): Promise<SessionResult> {
  const result: SessionResult = { variant, frames: 0, expected: "open", actual: "", problems: [], stopped: false, answers: {}, verdicts: {}, welcomes: 0 };
  newSession(trust);
  /** The verifier's verdicts on this session's commands start here (none of the last session's comes after its link closed). */
  const verdictsFrom = stats.verdicts.length;
  /** The oracle's verdict on each command frame, in the order sent. */
  const predicted: { commandId: string; code: string }[] = [];
  const nonces: Uint8Array[] = [];
  /** Answers owed for commands sent while the link was online (it drops replies otherwise). */
  const owed: Owed[] = [];
  let online = false;
  let ending: { close: number; reason?: string; welcomeRefused?: WelcomeRefusal } | { stop: true } | undefined;

  /** Notes what the oracle says of a frame the link will hand to the verifier. */
  const expectVerdict = (reaction: Reaction): Reaction => {
    if (typeof reaction === "object" && "rejected" in reaction) predicted.push({ commandId: reaction.commandId, code: reaction.rejected });
    if (typeof reaction === "object" && "command" in reaction) predicted.push({ commandId: reaction.command.commandId, code: "ok" });
    return reaction;
  };

  const play = async (bytes: Uint8Array, counted: boolean): Promise<void> => {
    const reaction = expectVerdict(react(bytes, trust));
    c.send(bytes);
    if (counted) result.frames++;
    if (reaction === "ignore") return;
    if ("close" in reaction || "stop" in reaction) {
      ending = reaction;
    } else if ("hello" in reaction) {
      nonces.push(reaction.hello);
      side.nonces.push(reaction.hello);
      // The link answers with a Hello signed over exactly this nonce.
      const hello = await c.next((e) => e.body === "hello" && sameBytes(signedNonce(e.hello, nonces) ?? new Uint8Array(0), reaction.hello), ANSWER_TIMEOUT_MS);
      if (!hello) result.problems.push("no Hello signed over the Challenge's nonce");
    } else if ("welcome" in reaction) {
      online = true;
      result.welcomes++;
    } else if ("rejected" in reaction) {
      if (online) owed.push({ commandId: reaction.commandId, what: `REJECTED ${reaction.rejected}`, accepts: (a) => a.status === Status.REJECTED && a.errorCode === reaction.rejected });
    } else {
      // Verified: dispatched (online or not), its result remembered by id.
      const command = reaction.command;
      const fresh = allowedStatuses(command);
      const known = trust.memory.get(command.commandId);
      // The dispatcher forgets the oldest results past REMEMBERED_RESULTS (1024): then a repeat runs afresh.
      const mayRunAfresh = trust.memory.size >= 1_000 || trust.unconfirmed.has(command.commandId);
      const allowed = known ? new Set([...known, ...(mayRunAfresh ? fresh : [])]) : fresh;
      if (!known) {
        trust.memory.set(command.commandId, new Set(fresh));
        trust.unconfirmed.add(command.commandId);
      }
      if (online) {
        owed.push({
          commandId: command.commandId,
          what: `${command.operation} → one of ${[...allowed]}`,
          accepts: (a) => allowed.has(a.status ?? 0) && (known !== undefined || a.status !== Status.OK || !command.ping || a.pong?.payload === command.ping.payload),
          settle: known && !trust.unconfirmed.has(command.commandId) ? undefined : (status) => {
            trust.memory.set(command.commandId, new Set([status]));
            trust.unconfirmed.delete(command.commandId);
          },
        });
      }
    }
  };

  /** The nonce the coordinator means its last Challenge to carry (a mutated one may have said another). */
  let intended: Uint8Array | undefined;
  /** Where a coordinator signs for: this host, the session as the link sees it (its last Challenge). */
  const here = (): Addressed => ({ hostId: side.hostId, sessionNonce: trust.sessionNonce ?? intended ?? new Uint8Array(32) });
  /** A Challenge nonce of an earlier session (or an earlier Challenge of this one), else one never sent. */
  const staleNonce = (): Uint8Array => {
    const current = here().sessionNonce;
    const earlier = side.nonces.filter((n) => !sameBytes(n, current));
    return earlier.length && r.chance(0.9) ? r.pick(earlier) : r.bytes(32);
  };
  const welcomeFrame = (kind: WelcomeKind, nonce: Uint8Array): Uint8Array => {
    const every = r.int(100, 5_000);
    const proof = { nonce, hostId: side.hostId, agentPublicKey: side.agentPublicKey };
    const good = side.signer.welcome(proof, every, r.chance(0.5));
    switch (kind) {
      case "good":
        return encodeEnvelope({ welcome: good });
      case "another key":
        // Correctly signed for the session, by a coordinator that is not this agent's.
        return encodeEnvelope({ welcome: side.impostor.welcome(proof, every) });
      case "unsigned":
        return encodeEnvelope({ welcome: { ...good, signature: r.chance(0.5) ? new Uint8Array(0) : r.bytes(64) } });
      case "forged":
        // The coordinator's key, signed by another one.
        return encodeEnvelope({ welcome: { ...good, signature: side.impostor.sign(welcomeProofBytes({ nonce, hostId: side.hostId, agentPublicKey: side.agentPublicKey })) } });
      case "stale nonce":
        // A Welcome signed for another session (or an earlier Challenge of this one), replayed.
        return encodeEnvelope({ welcome: side.signer.welcome({ ...proof, nonce: staleNonce() }, every) });
      case "another host":
        return encodeEnvelope({ welcome: side.signer.welcome({ ...proof, hostId: `${side.hostId}-other` }, every) });
      case "another agent":
        // Signed for another agent's key: a Welcome relayed from another host's session.
        return encodeEnvelope({ welcome: side.signer.welcome({ ...proof, agentPublicKey: r.bytes(32) }, every) });
    }
  };
  /** A Welcome the agent must refuse. Before the pin, not one it would pin: another key when it trusts the first, another host id. */
  const badWelcome = (): WelcomeKind => {
    const kind = r.pick(["another key", "unsigned", "forged", "stale nonce", "another host", "another agent"] as const);
    if (kind === "another key" && trust.pinned === undefined && trust.enrollmentKeyId === undefined) return "forged";
    if (kind === "another host" && trust.hostId === undefined) return "stale nonce";
    return kind;
  };

  const handshake = async (mutateChallenge: boolean, mutateWelcome: boolean, welcomeKind: WelcomeKind = "good") => {
    intended = r.bytes(32);
    const challenge = encodeEnvelope({ challenge: { nonce: intended, protocolVersion: 1 } });
    await play(mutateChallenge ? mutate(r, challenge) : challenge, false);
    if (ending) return;
    // Signed for the nonce the coordinator sent: after a mutated Challenge the link may have another.
    const welcome = welcomeFrame(welcomeKind, intended);
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
  const sign = (command: cutover.v1.Command.$Properties, to = here()) => side.signer.frame(command, to, side.signer.nextSequence(trust.lastSequence));
  const sentSigned: Uint8Array[] = [];
  /**
   * A command a coordinator signed: fresh (for this host and session), a replay (of this session's or an
   * earlier one's), a reused id, an old sequence, signed garbage, tampered with after signing, signed for
   * another host, for another session, or with another key.
   */
  const signedCommand = (): Uint8Array => {
    const command = tameCommand() ?? { commandId: `c-${r.uint32()}`, deadlineUnixMs: Date.now() + 10_000, ping: { payload: "p" } };
    const kind = r.weighted([
      [60, "fresh"],
      [7, "replay"],
      [6, "reused id"],
      [5, "old sequence"],
      [4, "signed garbage"],
      [5, "tampered"],
      [5, "another host"],
      [6, "another session"],
      [2, "another key"],
    ] as const);
    let frame: Uint8Array;
    switch (kind) {
      case "replay":
        if (side.recorded.length && r.chance(0.4)) return r.pick(side.recorded);
        if (sentSigned.length) return r.pick(sentSigned);
        frame = sign(command);
        break;
      case "reused id":
        frame = sign({ ...command, commandId: trust.memory.size ? r.pick([...trust.memory.keys()]) : command.commandId });
        break;
      case "old sequence":
        frame = side.signer.frame(command, here(), Math.max(1, trust.lastSequence - r.int(0, 5)));
        break;
      case "signed garbage": {
        const garbage = r.chance(0.5)
          ? r.bytes(r.int(0, 64))
          : mutate(r, v1.Command.encode({ ...command, sequence: side.signer.nextSequence(trust.lastSequence), ...here() }).finish());
        return encodeEnvelope({ command: { commandId: command.commandId, deadlineUnixMs: command.deadlineUnixMs, signed: garbage, signature: side.signer.sign(garbage) } });
      }
      case "tampered":
        return mutate(r, sign(command));
      case "another host":
        // Now and then for another session too: the host is checked first.
        frame = sign(command, { hostId: r.pick([`${side.hostId}-other`, "", `h-${r.uint32()}`]), sessionNonce: r.chance(0.3) ? staleNonce() : here().sessionNonce });
        break;
      case "another session":
        // An earlier session's nonce, none, or the one the last good Welcome was for: after a newer Challenge
        // that is not the session the link is on any more (while it still is, the command is simply fresh).
        frame = sign(command, { ...here(), sessionNonce: r.weighted<() => Uint8Array>([[3, staleNonce], [1, () => new Uint8Array(0)], [2, () => trust.welcomedNonce ?? staleNonce()]])() });
        break;
      case "another key":
        return side.impostor.frame(command, here(), side.signer.nextSequence(trust.lastSequence));
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
      // frames at a per-session rate (the first bad one ends the session). A few handshakes end at a Welcome the agent must refuse.
      await handshake(false, false, r.chance(0.06) ? badWelcome() : "good");
      const fuzzRate = r.weighted([[3, 0.03], [2, 0.15], [1, 0.6]] as const);
      for (let n = framesPerSession(r); n > 0 && !ending; n--) {
        const kind = r.pick(COORDINATOR_KINDS);
        let frame = r.chance(fuzzRate) ? fuzzFrame(r, r.chance(0.8) ? MIX : MIX_ANY).bytes : kind === "command" && r.chance(0.5) ? signedCommand() : validFrame(r, kind, TAME_GEN).bytes;
        // Most extra Welcomes are the coordinator's, signed for the session as the link sees it (a second Welcome);
        // the others one the agent must refuse (4401). The rest (random key, random signature) are refused too.
        if (kind === "welcome" && r.chance(0.85)) frame = welcomeFrame(r.chance(0.88) ? "good" : badWelcome(), here().sessionNonce);
        await play(frame, true);
      }
      break;
    }
    case "impostor":
      // Nothing pinned yet, and a coordinator other than the one the enrollment token names answers first:
      // its Welcome is correctly signed for the session, with its own key. Refused; the key is not pinned.
      await handshake(false, false, "another key");
      break;
    case "commands":
      // Signed commands (fresh, replayed, reordered, reused ids, tampered, for another host or session), to check
      // one verdict and one answer per command with the right status.
      await handshake(false, false, r.chance(0.06) ? badWelcome() : "good");
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

  let complete = false;
  if (ending && "stop" in ending) {
    // A permanent Refusal: the link closes with 1001 and stops for good.
    result.expected = "stop (close 1001)";
    const closed = await withTimeout(c.closed, ANSWER_TIMEOUT_MS);
    result.actual = closed ? `close ${closed.code} ${closed.reason}; link ${link().state}` : "still open";
    result.stopped = link().state === "stopped";
    if (!closed || closed.code !== 1001 || !result.stopped) result.problems.push(`expected ${result.expected}, got ${result.actual}`);
  } else if (ending) {
    result.welcomeRefused = ending.welcomeRefused;
    result.expected = `close ${ending.close}${ending.reason ? ` ${ending.reason}` : ""}`;
    const closed = await withTimeout(c.closed, ANSWER_TIMEOUT_MS);
    result.actual = closed ? `close ${closed.code} ${closed.reason}` : "still open";
    if (!closed || closed.code !== ending.close || (ending.reason && !closed.reason.startsWith(ending.reason))) result.problems.push(`expected ${result.expected}, got ${result.actual}`);
    // A link that kept a session it should have closed is cut here, so it comes back for the closing session.
    if (!closed) c.socket.terminate();
  } else {
    // Still open: every command sent while online is answered once as the oracle says, then a final ping proves the link works.
    const used = new Set<Envelope>();
    for (const debt of owed) {
      const answer = await c.next((e) => !used.has(e) && e.commandResult?.commandId === debt.commandId && debt.accepts(e.commandResult), ANSWER_TIMEOUT_MS);
      if (!answer) {
        const got = c.received.filter((e) => e.commandResult?.commandId === debt.commandId).map((e) => `${e.commandResult!.status} ${e.commandResult!.errorCode ?? ""}`);
        result.problems.push(`command ${JSON.stringify(debt.commandId)}: expected ${debt.what}, got [${got.join(", ")}]`);
        // One wrong answer says enough; waiting out the rest would only make a failing run slow.
        break;
      }
      used.add(answer);
      debt.settle?.(answer.commandResult!.status ?? 0);
    }
    if (online) {
      const finalId = `final-${r.uint32()}`;
      const ping = sign({ commandId: finalId, deadlineUnixMs: Date.now() + 30_000, ping: { payload: "still there?" } });
      // Answered OK, unless a signed command of the session carried a sequence the next one cannot exceed (2^53),
      // or a later Challenge moved the link to a session no Welcome has vouched for.
      const expectOk = "command" in (expectVerdict(react(ping, trust)) as object);
      c.send(ping);
      const pong = await c.next((e) => e.commandResult?.commandId === finalId, ANSWER_TIMEOUT_MS);
      if (!pong || (expectOk && pong.commandResult?.status !== Status.OK)) result.problems.push(`the link did not answer the final ping (${pong?.commandResult?.errorCode ?? "no answer"})`);
      result.actual = pong ? "open, answered the final ping" : "open, silent";
      // The link hands frames over in order: every command before the ping has reached the verifier.
      complete = pong !== undefined;
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
  // The verifier judged every command as the oracle did, in order, online or not. A session that ended
  // otherwise than with the final ping may have had its last frames dropped with the socket: a prefix then.
  const verdicts = stats.verdicts.slice(verdictsFrom);
  await Promise.all(verdicts.map((v) => v.settled));
  const mismatch = predicted.findIndex((p, i) => i >= verdicts.length || p.commandId !== verdicts[i]!.commandId || p.code !== verdicts[i]!.code);
  const cut = mismatch >= verdicts.length;
  if ((mismatch >= 0 && !(cut && !complete)) || verdicts.length > predicted.length) {
    const at = mismatch >= 0 ? mismatch : predicted.length;
    const show = (v?: { commandId: string; code: string }) => (v ? `${JSON.stringify(v.commandId)} ${v.code}` : "nothing");
    result.problems.push(`command #${at + 1} of the session: the oracle says ${show(predicted[at])}, the verifier said ${show(verdicts[at])} (${verdicts.length} verdicts for ${predicted.length} commands)`);
  }
  for (const p of predicted) result.verdicts[p.code] = (result.verdicts[p.code] ?? 0) + 1;
  side.recorded.push(...sentSigned);
  side.recorded.splice(0, Math.max(0, side.recorded.length - MAX_RECORDED));
  side.nonces.splice(0, Math.max(0, side.nonces.length - MAX_RECORDED));
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
  const impostor = new CoordinatorSigner();
  const stats: LinkStats = { links: 0, reports: 0, welcomes: 0, permanentRefusals: 0, verdicts: [], logs: [] };
  const r = new Rng(subSeed(SEED, "agent"));
  /**
   * Each link gets an empty state dir (nothing pinned yet), a fresh trust model and its own host id. Its
   * enrollment token names the coordinator's key, except for one link in four: an agent whose pin was
   * removed on purpose, which trusts the first key it sees (the first link always has a key id).
   */
  const stateDirs: string[] = [];
  t.teardown(() => stateDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));
  const freshLink = () => {
    stateDirs.push(mkdtempSync(join(STATE_ROOT, "cutover-fuzz-agent-")));
    const enrollmentKeyId = stats.links === 0 || r.chance(0.75) ? keyIdOf(signer.publicKey) : undefined;
    const side: CoordinatorSide = { signer, impostor, hostId: `h-fuzz-${stats.links + 1}`, agentPublicKey: identity.publicKey, nonces: [], recorded: [] };
    const trust: TrustModel = { agentPublicKey: identity.publicKey, enrollmentKeyId, lastSequence: 0, memory: new Map(), unconfirmed: new Set() };
    return { link: startLink(server.url, identity, stats, stateDirs.at(-1)!, enrollmentKeyId), trust, side };
  };
  let { link, trust, side } = freshLink();
  t.teardown(() => link.stop());
  const heapBefore = settledHeap(gc);
  const started = performance.now();
  // The link runs in this process: a frame that hangs it shows as an event-loop stall.
  const stalls = monitorEventLoopDelay({ resolution: 10 });
  stalls.enable();

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
    // Until a link has pinned the coordinator's key, its sessions are clean ones; some of those whose token
    // names the key first meet an impostor (always the very first session of the run).
    const impostorFirst = trust.pinned === undefined && trust.enrollmentKeyId !== undefined && (sessions.length === 0 || r.chance(0.25));
    const variant: Variant = trust.pinned === undefined ? (impostorFirst ? "impostor" : "normal") : r.weighted(VARIANTS);
    const result = await playSession(c, r, variant, trust, side, stats, () => link);
    sessions.push(result);
    frames += result.frames;
    // The model no longer describes the link after a session it got wrong: stop there (the seed replays it).
    if (result.problems.length) break;
    if (result.stopped) {
      link.stop();
      distinctCommands += trust.memory.size;
      ({ link, trust, side } = freshLink());
    }
  }
  const fuzzMs = performance.now() - started;
  stalls.disable();
  const maxStallMs = stalls.max / 1e6;

  // A clean session at the end: the link still does the whole handshake and answers a ping.
  const last = await server.nextConnection(ANSWER_TIMEOUT_MS);
  let finalOk = false;
  if (last) {
    newSession(trust);
    const nonce = new Uint8Array(32).fill(7);
    const challenge = encodeEnvelope({ challenge: { nonce, protocolVersion: 1 } });
    react(challenge, trust);
    last.send(challenge);
    const hello = await last.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
    const welcome = encodeEnvelope({ welcome: signer.welcome({ nonce, hostId: side.hostId, agentPublicKey: identity.publicKey }, 60_000) });
    const welcomed = "welcome" in (react(welcome, trust) as object);
    last.send(welcome);
    const ping = signer.frame({ commandId: "the-end", deadlineUnixMs: Date.now() + 30_000, ping: { payload: "bye" } }, { hostId: side.hostId, sessionNonce: nonce }, signer.nextSequence(trust.lastSequence));
    // OK with its pong, unless a signed command of the run pushed the accepted sequence to where no next one fits (2^53).
    const expectOk = "command" in (react(ping, trust) as object);
    last.send(ping);
    const pong = await last.next((e) => e.commandResult?.commandId === "the-end", ANSWER_TIMEOUT_MS);
    finalOk = welcomed && !!hello && helloVerifies(hello.hello, [nonce]) && !!pong && (!expectOk || pong.commandResult?.pong?.payload === "bye");
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
  const sum = (pick: (s: SessionResult) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const s of sessions) for (const [k, n] of Object.entries(pick(s))) out[k] = (out[k] ?? 0) + n;
    return out;
  };
  const answers = sum((s) => s.answers);
  const verdicts = sum((s) => s.verdicts);
  const welcomeRefusals = sum((s) => (s.welcomeRefused ? { [s.welcomeRefused]: 1 } : {}));
  const welcomesAccepted = sessions.reduce((n, s) => n + s.welcomes, 0);
  t.log(`seed ${seedHex} (replay: CUTOVER_FUZZ_SEED=${seedHex} npx ava test/dist/fuzz/agent-link.test.js)`);
  t.log(`frames: ${frames} fuzz frames over ${sessions.length} sessions (${server.connections} connections) in ${(fuzzMs / 1000).toFixed(1)} s`);
  t.log(`sessions by variant → expected ending: ${JSON.stringify(byVariant)}`);
  t.log(`link: ${reconnects} reconnects, ${stats.permanentRefusals} permanent refusals (${stats.links} links started), ${stats.welcomes} welcomes, ${ignored} frames logged and ignored; decode errors that closed the session: ${JSON.stringify(closeReasons)}`);
  t.log(`welcomes: ${welcomesAccepted} accepted; refused, by the rule that refused them: ${JSON.stringify(welcomeRefusals)}`);
  t.log(`verifier verdicts (each checked against the oracle): ${JSON.stringify(verdicts)}`);
  t.log(`command answers by status: ${JSON.stringify(answers)}`);
  t.log(`commands: ${distinctCommands + trust.memory.size} distinct ids dispatched after verification; handler errors logged: ${handlerErrors.length}${handlerErrors.length ? ` (${[...new Set(handlerErrors.map((l) => l.replace(/^\S+ /, "")))].slice(0, 3).join(" | ")})` : ""}`);
  t.log(`heap after GC: ${MiB(heapBefore)} before, ${MiB(heapAfter)} after; longest event-loop stall ${maxStallMs.toFixed(0)} ms; link intervals still running after stop(): ${leaked}`);
  if (guard.warnings.length) t.log(`process warnings: ${[...new Set(guard.warnings)].join("; ")}`);

  t.deepEqual(guard.problems, [], "no uncaught exception or unhandled rejection");
  t.deepEqual(
    sessions.filter((s) => s.problems.length).map((s) => `${s.variant} (${s.frames} frames): ${s.problems.slice(0, 3).join("; ")}`),
    [],
    "every session went as the protocol says",
  );
  t.true(maxStallMs < MAX_STALL_MS, `longest event-loop stall ${maxStallMs.toFixed(0)} ms < ${MAX_STALL_MS} ms`);
  t.false(lostLink, "the link always came back after a session ended");
  const failed = sessions.some((s) => s.problems.length);
  t.true(failed || frames >= AGENT_FRAMES, `sent ${frames} ≥ ${AGENT_FRAMES} frames`);
  t.true(finalOk, "after the fuzz the link still handshakes and answers a ping");
  t.true(reconnects > 0 && Object.keys(closeReasons).length > 0, "the fuzz reached the decode-error path (and reconnects)");
  // The oracle agreeing proves little if a rule was never met: each one must have decided some frame.
  const RULES = ["ok", "ERR_COMMAND_UNSIGNED", "ERR_COMMAND_BAD_SIGNATURE", "ERR_COMMAND_MALFORMED", "ERR_COMMAND_WRONG_HOST", "ERR_COMMAND_WRONG_SESSION", "ERR_COMMAND_REPLAYED"];
  if (!failed) t.deepEqual(RULES.filter((code) => !verdicts[code]), [], "every verdict of the verifier was reached (acceptance and each refusal)");
  const WELCOME_RULES: WelcomeRefusal[] = ["key not the pinned one", "key not the token's", "signature", "host id not the pinned one"];
  if (!failed) t.deepEqual(WELCOME_RULES.filter((why) => !welcomeRefusals[why]), [], "every reason to refuse a Welcome was reached");
  t.deepEqual([...new Set(guard.warnings)], [], "no process warning (a TimeoutOverflowWarning means a heartbeat timer fires every 1 ms)");
  t.is(leaked, 0, "no heartbeat interval of the link is left running after stop() (a second Welcome must not start a second heartbeat loop)");
  t.true(heapAfter - heapBefore < HEAP_GROWTH_TOLERANCE, `heap grew ${MiB(heapAfter - heapBefore)} (tolerance ${MiB(HEAP_GROWTH_TOLERANCE)})`);
});

/** A link online on its first session (nonce all zeros), welcomed by `signer` as host "h"; `welcome()` makes another Welcome for that session. */
async function onlineLink(t: { teardown(fn: () => void | Promise<void>): void }, heartbeatIntervalMs: number) {
  const guard = guardProcess();
  const intervals = trackIntervals();
  t.teardown(() => {
    intervals.restore();
    guard.dispose();
  });
  const server = await FakeCoordinator.start();
  t.teardown(() => server.close());
  const stats: LinkStats = { links: 0, reports: 0, welcomes: 0, permanentRefusals: 0, verdicts: [], logs: [] };
  const stateDir = mkdtempSync(join(STATE_ROOT, "cutover-fuzz-agent-"));
  const identity = newIdentity();
  const signer = new CoordinatorSigner();
  const link = startLink(server.url, identity, stats, stateDir, keyIdOf(signer.publicKey));
  t.teardown(() => {
    link.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });
  const nonce = new Uint8Array(32);
  const welcome = () => signer.welcome({ nonce, hostId: "h", agentPublicKey: identity.publicKey }, heartbeatIntervalMs);
  const c = (await server.nextConnection(ANSWER_TIMEOUT_MS))!;
  c.sendEnvelope({ challenge: { nonce, protocolVersion: 1 } });
  await c.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
  c.sendEnvelope({ welcome: welcome() });
  await link.whenOnline();
  return { guard, intervals, server, stats, link, c, welcome, signer, nonce, identity };
}

/** The two findings of the fuzz above, as fixed cases that run whatever the seed. */
test.serial("a Welcome with heartbeat_interval_ms above 2^31-1 does not make the agent heartbeat every millisecond", async (t) => {
  const { guard, c } = await onlineLink(t, 3_000_000_000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const heartbeats = c.received.filter((e) => e.body === "heartbeat").length;
  t.log(`${heartbeats} heartbeats in 300 ms; warnings: ${guard.warnings.join("; ") || "none"}`);
  t.true(heartbeats <= 3, `heartbeats in 300 ms: ${heartbeats} (a uint32 interval above 2^31-1 becomes 1 ms in Node's setInterval)`);
  t.deepEqual(guard.warnings, []);
});

test.serial("a second Welcome on an online session does not leave a heartbeat loop running after the link stops", async (t) => {
  const { intervals, link, c, welcome, signer, nonce } = await onlineLink(t, 50);
  c.sendEnvelope({ welcome: welcome() });
  // The link handles frames in order: this ping is answered after the second Welcome was handled.
  c.send(signer.frame({ commandId: "after", deadlineUnixMs: Date.now() + 30_000, ping: { payload: "x" } }, { hostId: "h", sessionNonce: nonce }));
  const pong = await c.next((e) => e.commandResult?.commandId === "after", ANSWER_TIMEOUT_MS);
  t.is(pong?.commandResult?.status, Status.OK, "a second Welcome signed for the session keeps it online and trusted");
  link.stop();
  t.is(intervals.linkIntervals(), 0, "heartbeat intervals of the link still running after stop()");
});

/**
 * A session is one connection: what was signed for the last one is no good on
 * the next. A relay that recorded a session (its Welcome, a command it held
 * back) and opens the link's next connection can play them back before any
 * Challenge: the agent must not run the command, nor go online on the Welcome.
 *
 * (Found by the fuzz's author: CoordinatorLink kept the last connection's
 * Challenge nonce until the next Challenge; it now forgets it when a
 * connection opens. The fuzz above sends nothing signed for an earlier
 * connection before a connection's Challenge, so it does not meet this.)
 */
test.serial("a command held back from the last connection is refused on the next one before its Challenge", async (t) => {
  const { c, stats, signer, nonce, identity, server } = await onlineLink(t, 60_000);
  const held = signer.frame({ commandId: "held-back", deadlineUnixMs: Date.now() + 30_000, ping: { payload: "late" } }, { hostId: "h", sessionNonce: nonce });
  c.socket.terminate();
  const next = (await server.nextConnection(ANSWER_TIMEOUT_MS))!;
  next.send(held);
  // Then this connection's own handshake and command: the link hands frames over in order.
  const fresh = new Uint8Array(32).fill(9);
  next.sendEnvelope({ challenge: { nonce: fresh, protocolVersion: 1 } });
  await next.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
  next.sendEnvelope({ welcome: signer.welcome({ nonce: fresh, hostId: "h", agentPublicKey: identity.publicKey }, 60_000) });
  next.send(signer.frame({ commandId: "now", deadlineUnixMs: Date.now() + 30_000, ping: { payload: "now" } }, { hostId: "h", sessionNonce: fresh }));
  const now = await next.next((e) => e.commandResult?.commandId === "now", ANSWER_TIMEOUT_MS);
  const verdicts = await Promise.all(stats.verdicts.map(async (v) => (await v.settled, `${v.commandId} ${v.code}`)));
  t.is(now?.commandResult?.status, Status.OK, "this connection's own command runs");
  t.deepEqual(verdicts, ["held-back ERR_COMMAND_WRONG_SESSION", "now ok"], "the command signed for the last connection is refused on this one");
});

test.serial("a Welcome recorded on the last connection is refused on the next one before its Challenge", async (t) => {
  const { c, server, welcome } = await onlineLink(t, 60_000);
  c.socket.terminate();
  const next = (await server.nextConnection(ANSWER_TIMEOUT_MS))!;
  next.sendEnvelope({ welcome: welcome() });
  // A link that refused the Welcome has closed before it reads this Challenge; one that took it answers with a Hello.
  next.sendEnvelope({ challenge: { nonce: new Uint8Array(32).fill(9), protocolVersion: 1 } });
  const hello = await next.next((e) => e.body === "hello", ANSWER_TIMEOUT_MS);
  const closed = next.isClosed ? await next.closed : undefined;
  const outcome = hello ? "online, answered the Challenge" : closed ? `closed ${closed.code} ${closed.reason}` : "silent";
  t.is(outcome, `closed ${CloseCode.AuthRefused} coordinator not trusted`);
});
