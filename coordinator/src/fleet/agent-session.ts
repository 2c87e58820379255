import { createPublicKey, randomBytes, verify } from "node:crypto";
import type { WebSocket } from "ws";
import {
  CloseCode,
  COMMAND_MAC,
  decodeEnvelope,
  encodeEnvelope,
  FOLLOWS_LEADER,
  helloProofBytes,
  isValidLabel,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  ProtocolErrorCode,
  RefusalCode,
  signedCommandBytes,
  welcomeProofBytes,
  type Envelope,
  type EnvelopeInit,
  type cutover,
} from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import { formatLabels, type HostIdentity, type HostRecord, type HostStore, type RequestedChange } from "../store/hosts.js";
import type { AuditEntry } from "../store/audit.js";
import type { CoordinatorKey } from "./coordinator-key.js";
import type { Leadership } from "./leadership.js";
import type { EnrollOutcome } from "./enrollment.js";
import { TokenBucket } from "./rate-limit.js";
import { isHostAddress } from "./host-address.js";
import { instancesFromWire, resourcesFromWire } from "./resources.js";
import { acceptKeyShare, commandMac, type SessionKey } from "./session-key.js";
import type { LinkClock, LivenessVerdict } from "./liveness.js";

export interface SessionLimits {
  /** Time from socket open to a valid Hello. */
  handshakeTimeoutMs: number;
  /** Sustained frames per second an agent may send. */
  maxFramesPerSec: number;
  /** Frames an agent may send in a burst. */
  frameBurst: number;
  /** Interval the agent is told to heartbeat at. */
  heartbeatIntervalMs: number;
}

/** What the session needs from the fleet around it. */
export interface SessionHost {
  hosts: HostStore;
  /** Spends the token and records the host in one transaction. */
  enroll(name: string, publicKey: Uint8Array, token: string, presented: HostIdentity): EnrollOutcome;
  /** Records who a host became and what it asked to change. */
  audit(entry: Omit<AuditEntry, "id" | "at">): void;
  log: Logger;
  limits: SessionLimits;
  /** Its public key is sent in Welcome (agents verify commands with it); Welcome is signed with it. */
  coordinatorKey: CoordinatorKey;
  /** Whether this coordinator leads: a follower refuses sessions and names the leader; Welcome carries the epoch and members. */
  leadership: Leadership;
  /** Called once the agent is authenticated; the fleet closes any older session of the same host. */
  onOnline(session: AgentSession): void;
  onHeartbeat(session: AgentSession, heartbeat: cutover.v1.Heartbeat): void;
  onCommandResult(session: AgentSession, result: cutover.v1.CommandResult): void;
  onEvent(session: AgentSession, event: cutover.v1.Event): void;
  onArtifactRequest(session: AgentSession, request: cutover.v1.ArtifactRequest): void;
  onLogLines(session: AgentSession, lines: cutover.v1.LogLines): void;
  onClosed(session: AgentSession): void;
}

/**
 *   awaiting_hello ──valid Hello──▶ online ──socket closes / kicked──▶ closed
 *         │                                                              ▲
 *         └──timeout, refusal, protocol error, socket closes─────────────┘
 */
export type SessionState = "awaiting_hello" | "online" | "closed";
const ALLOWED: Record<SessionState, SessionState[]> = {
  awaiting_hello: ["online", "closed"],
  online: ["closed"],
  closed: [],
};

class Refused extends Error {
  constructor(readonly code: string, message: string, readonly permanent: boolean, readonly leaderUrl = "") {
    super(message);
  }
}

/** One agent's WebSocket: handshake, authentication, then frames routed to the fleet. */
export class AgentSession {
  state: SessionState = "awaiting_hello";
  host: HostRecord | undefined;
  /** Heartbeats and pings of this link; the fleet judges liveness from it (liveness.ts). */
  readonly clock: LinkClock = { lastHeartbeatAt: 0, lastPingAt: 0, unansweredPingSince: undefined };
  /** online ⇄ late, as the fleet's liveness check judged it (`unreachable` is a closed session). */
  liveness: "online" | "late" = "online";
  /** How overdue the heartbeat is while `late`, else 0. */
  heartbeatOverdueMs = 0;
  readonly remote: string;
  /** This session's Challenge nonce: commands sent on it are signed for it. */
  readonly challengeNonce = randomBytes(NONCE_BYTES);
  /** Set when the agent took a per-session command key ("commands.mac"): commands carry a MAC, not a signature. */
  private commandKey: SessionKey | undefined;
  /** The last sequence sent under commandKey (per session, from 1). */
  private macSequence = 0;
  private readonly bucket: TokenBucket;
  private readonly handshakeTimer: NodeJS.Timeout;
  private log: Logger;

  constructor(private readonly socket: WebSocket, remote: string, private readonly ctx: SessionHost) {
    this.remote = remote;
    this.log = ctx.log;
    this.bucket = new TokenBucket(ctx.limits.maxFramesPerSec, ctx.limits.frameBurst);
    this.handshakeTimer = setTimeout(() => {
      this.fail(new ProtocolError(ProtocolErrorCode.HandshakeTimeout, `no Hello within ${ctx.limits.handshakeTimeoutMs} ms`));
    }, ctx.limits.handshakeTimeoutMs);
    socket.on("message", (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    socket.on("pong", () => this.sawLinkAlive());
    socket.on("close", () => this.transition("closed", "socket closed"));
    socket.on("error", (error) => this.log.warn("agent socket error", { remote, error: error.message }));
    this.send({ challenge: { nonce: this.challengeNonce, protocolVersion: PROTOCOL_VERSION } });
  }

  get name(): string {
    return this.host?.name ?? `(unauthenticated ${this.remote})`;
  }

  private transition(to: SessionState, why: string): void {
    const from = this.state;
    if (from === to) return;
    if (!ALLOWED[from].includes(to)) throw new Error(`agent session cannot go from ${from} to ${to}`);
    this.state = to;
    this.log.info("agent session", { host: this.host?.name, remote: this.remote, from, to, why });
    if (to !== "awaiting_hello") clearTimeout(this.handshakeTimer);
    if (to === "online") this.ctx.onOnline(this);
    if (to === "closed" && from === "online") this.ctx.onClosed(this);
  }

  send(envelope: EnvelopeInit): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.socket.send(encodeEnvelope(envelope), { binary: true });
  }

  /** How commands on this session are authenticated. */
  get commandAuth(): "mac" | "signature" {
    return this.commandKey ? "mac" : "signature";
  }

  /**
   * Sends one command, bound to this host, this session and the next sequence: under the
   * session's command key when the agent took one, else signed with the coordinator's key and
   * the host's stored sequence (agents without "commands.mac").
   */
  sendCommand(operation: Omit<cutover.v1.Command.$Properties, "sequence" | "signature" | "signed" | "mac" | "hostId" | "sessionNonce">): void {
    const host = this.host!;
    if (this.commandKey) {
      const signed = signedCommandBytes({ ...operation, sequence: ++this.macSequence, hostId: host.id, sessionNonce: this.challengeNonce });
      this.send({ command: { commandId: operation.commandId, deadlineUnixMs: operation.deadlineUnixMs, signed, mac: commandMac(this.commandKey.key, signed) } });
      return;
    }
    const signed = signedCommandBytes({ ...operation, sequence: this.ctx.hosts.nextSequence(host.id), hostId: host.id, sessionNonce: this.challengeNonce });
    this.send({ command: { commandId: operation.commandId, deadlineUnixMs: operation.deadlineUnixMs, signed, signature: this.ctx.coordinatorKey.sign(signed) } });
  }

  /** Closes the session from our side (replaced by a newer one, shutdown, missed heartbeats). */
  close(code: number, reason: string): void {
    this.socket.close(code, reason.slice(0, 120));
    this.transition("closed", reason);
  }

  /** Sends a WebSocket ping; the agent's socket layer answers it even while its own loop is busy with work. */
  ping(now: number): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    this.clock.lastPingAt = now;
    this.clock.unansweredPingSince ??= now;
    this.socket.ping();
  }

  /** Takes the fleet's verdict of a live link; logs each change between online and late once, and says whether it changed. */
  judged(verdict: Exclude<LivenessVerdict, { state: "dead" }>): boolean {
    this.heartbeatOverdueMs = verdict.state === "late" ? verdict.heartbeatOverdueMs : 0;
    if (verdict.state === this.liveness) return false;
    const from = this.liveness;
    this.liveness = verdict.state;
    if (verdict.state === "late") this.log.warn("host late: heartbeats overdue", { host: this.name, from, to: "late", overdueMs: verdict.heartbeatOverdueMs });
    else this.log.info("host on time again", { host: this.name, from, to: "online" });
    return true;
  }

  private sawLinkAlive(): void {
    this.clock.unansweredPingSince = undefined;
  }

  /** Refuses the session from our side (the host was removed): the agent is told why, then the socket closes. */
  refuse(code: RefusalCode, message: string): void {
    this.send({ refusal: { code, message, permanent: true } });
    this.close(CloseCode.AuthRefused, code);
  }

  /** Cuts the TCP connection without a closing handshake (peer is unresponsive). */
  terminate(reason: string): void {
    this.socket.terminate();
    this.transition("closed", reason);
  }

  private fail(error: ProtocolError): void {
    if (this.state === "closed") return;
    this.log.warn("protocol error; closing agent session", { host: this.host?.name, remote: this.remote, code: error.code, error: error.message });
    this.close(error.closeCode, `${error.code}: ${error.message}`);
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.state === "closed") return;
    // Any frame shows the link is alive (as a pong would); only heartbeats say the agent is on time.
    this.sawLinkAlive();
    if (!this.bucket.take()) {
      this.fail(new ProtocolError(ProtocolErrorCode.RateLimited, `more than ${this.ctx.limits.maxFramesPerSec} frames/s`));
      return;
    }
    if (!isBinary) {
      this.fail(new ProtocolError(ProtocolErrorCode.TextFrame, "text frame on a binary protocol"));
      return;
    }
    let envelope: Envelope;
    try {
      envelope = decodeEnvelope(data);
    } catch (error) {
      if (error instanceof ProtocolError) return this.fail(error);
      throw error;
    }
    try {
      this.route(envelope);
    } catch (error) {
      if (error instanceof ProtocolError) return this.fail(error);
      this.log.error("failed to handle agent frame", { host: this.host?.name, body: envelope.body, error: (error as Error).message });
    }
  }

  private route(envelope: Envelope): void {
    if (this.state === "awaiting_hello") {
      if (envelope.body !== "hello") {
        throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, `expected Hello, got ${envelope.body ?? "an unknown message"}`);
      }
      this.onHello(envelope.hello as cutover.v1.Hello);
      return;
    }
    switch (envelope.body) {
      case "heartbeat": {
        const beat = envelope.heartbeat as cutover.v1.Heartbeat;
        this.clock.lastHeartbeatAt = this.clock.lastPingAt = Date.now();
        this.ctx.hosts.report(this.host!.id, resourcesFromWire(beat.resources!), instancesFromWire(beat.instances));
        this.ctx.onHeartbeat(this, beat);
        return;
      }
      case "commandResult":
        this.ctx.onCommandResult(this, envelope.commandResult as cutover.v1.CommandResult);
        return;
      case "event":
        this.ctx.onEvent(this, envelope.event as cutover.v1.Event);
        return;
      case "logLines":
        this.ctx.onLogLines(this, envelope.logLines as cutover.v1.LogLines);
        return;
      case "artifactRequest":
        this.ctx.onArtifactRequest(this, envelope.artifactRequest as cutover.v1.ArtifactRequest);
        return;
      case undefined:
        // A message kind from a newer agent: log and carry on (evolution by addition).
        this.log.warn("ignoring unknown message kind from agent", { host: this.host?.name });
        return;
      default:
        throw new ProtocolError(ProtocolErrorCode.UnexpectedMessage, `agents do not send ${envelope.body}`);
    }
  }

  private onHello(hello: cutover.v1.Hello): void {
    try {
      // Before anything reads or writes the store: a follower neither enrolls nor records hosts.
      this.refuseUnlessLeading();
      const presented: HostIdentity = { labels: this.presentedLabels(hello), address: this.presentedAddress(hello) };
      const { host: found, enrolled } = this.authenticate(hello, presented);
      this.log = this.ctx.log.child(found.name);
      if (hello.resources) this.ctx.hosts.report(found.id, resourcesFromWire(hello.resources), instancesFromWire(hello.instances));
      const { host, change } = this.ctx.hosts.introduce(found, {
        ...presented,
        hostname: hello.hostname ?? "",
        capabilities: hello.capabilities ?? [],
        agentVersion: hello.agentVersion ?? "",
      });
      this.host = host;
      if (change) this.changeRequested(found, change);
      this.clock.lastHeartbeatAt = this.clock.lastPingAt = Date.now();
      const { publicKey, sign } = this.ctx.coordinatorKey;
      // An agent that announces "commands.mac" with a share gets a session key: one signature (the Welcome's) covers it.
      const agentShare = hello.capabilities?.includes(COMMAND_MAC) ? hello.sessionKeyShare : undefined;
      this.commandKey = agentShare?.length ? acceptKeyShare(agentShare, this.challengeNonce, host.id) : undefined;
      const shares = this.commandKey && { agent: agentShare!, coordinator: this.commandKey.share };
      // Only to an agent that verifies them: an older one verifies the proof without them (leadership.ts in @cutover/protocol).
      const fleet = hello.capabilities?.includes(FOLLOWS_LEADER) ? { epoch: this.ctx.leadership.epoch(), members: this.ctx.leadership.members() } : undefined;
      this.send({
        welcome: {
          hostId: host.id,
          heartbeatIntervalMs: this.ctx.limits.heartbeatIntervalMs,
          protocolVersion: Math.min(PROTOCOL_VERSION, hello.protocolVersion),
          enrolled,
          coordinatorPublicKey: publicKey,
          signature: sign(welcomeProofBytes({ nonce: this.challengeNonce, hostId: host.id, agentPublicKey: hello.publicKey, shares, ...fleet })),
          sessionKeyShare: shares?.coordinator,
          ...fleet,
        },
      });
      this.transition("online", enrolled ? "enrolled" : "authenticated");
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      // A follower sends every agent on: one line each would flood its log in a reconnect storm.
      const level = error.code === RefusalCode.NotLeader ? "debug" : "warn";
      this.log[level]("refused agent", { name: hello.name, remote: this.remote, code: error.code, reason: error.message });
      this.send({ refusal: { code: error.code, message: error.message, permanent: error.permanent, leaderUrl: error.leaderUrl } });
      this.close(CloseCode.AuthRefused, error.code);
    }
  }

  /** A coordinator that does not lead sends the agent to the one that does (the agent follows only a URL it trusts). */
  private refuseUnlessLeading(): void {
    const { leadership } = this.ctx;
    if (leadership.isLeader()) return;
    const leaderUrl = leadership.leaderAgentUrl() ?? "";
    const next = leaderUrl ? `the leader is ${leaderUrl}` : "no coordinator leads right now; try again shortly";
    throw new Refused(RefusalCode.NotLeader, `this coordinator does not lead the fleet: ${next}`, false, leaderUrl);
  }

  private presentedLabels(hello: cutover.v1.Hello): Record<string, string> {
    const labels: Record<string, string> = {};
    for (const [key, value] of Object.entries(hello.labels ?? {})) {
      if (isValidLabel(key, value)) labels[key] = value;
      else this.log.warn("ignoring invalid label", { key, value });
    }
    return labels;
  }

  /** The address the agent presents, or "" when it is not an address (it would reach load balancers' configs). */
  private presentedAddress(hello: cutover.v1.Hello): string {
    const address = hello.address ?? "";
    if (address === "" || isHostAddress(address)) return address;
    this.log.warn("ignoring an address that is neither an IP address nor a host name", { address: JSON.stringify(address).slice(0, 100) });
    return "";
  }

  /** The agent presents labels or an address other than the fleet's record: kept for an admin, never taken. */
  private changeRequested(host: HostRecord, change: RequestedChange): void {
    const detail = [
      change.labels && `labels ${formatLabels(host.labels)} -> ${formatLabels(change.labels)}`,
      change.address !== undefined && `address ${host.address || "(none)"} -> ${change.address || "(none)"}`,
    ].filter(Boolean).join("; ");
    this.log.warn("host presents labels or an address other than its record; pending until an admin runs `cutover hosts accept`", { host: host.name, change: detail });
    this.ctx.audit({ actor: `host ${host.name}`, action: "hello: identity change requested", target: host.name, outcome: "pending", detail });
  }

  /** Proves the agent holds its key, then enrolls it (first contact) or finds its record. */
  private authenticate(hello: cutover.v1.Hello, presented: HostIdentity): { host: HostRecord; enrolled: boolean } {
    const publicKey = hello.publicKey;
    const signed = helloProofBytes(this.challengeNonce, hello.name, publicKey);
    let signatureOk = false;
    try {
      const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(publicKey).toString("base64url") }, format: "jwk" });
      signatureOk = verify(null, signed, key, hello.signature);
    } catch {
      signatureOk = false;
    }
    if (!signatureOk) {
      throw new Refused(RefusalCode.BadSignature, "the Hello signature does not verify with the presented key", false);
    }
    // A removed host's key is never in the inventory, so a known key needs no look at the retired ones.
    const known = this.ctx.hosts.byPublicKey(publicKey);
    if (known) {
      if (known.name !== hello.name) {
        throw new Refused(RefusalCode.KeyMismatch, `this key is enrolled as host "${known.name}", not "${hello.name}"; start the agent with --name ${known.name}`, true);
      }
      return { host: known, enrolled: false };
    }
    const retired = this.ctx.hosts.retired(publicKey);
    if (retired) {
      throw new Refused(
        RefusalCode.HostRemoved,
        `this agent's key belonged to host "${retired.name}", removed from the fleet by ${retired.removedBy} at ${new Date(retired.removedAt).toISOString()}; to join again, clear the agent's state dir and enroll with a new token`,
        true,
      );
    }
    const sameName = this.ctx.hosts.byName(hello.name);
    if (sameName) {
      throw new Refused(
        RefusalCode.KeyMismatch,
        `host "${hello.name}" is enrolled with a different key; restore the agent's state dir, or pick another --name`,
        true,
      );
    }
    if (!hello.enrollmentToken) {
      throw new Refused(RefusalCode.UnknownAgent, "this agent is not enrolled; create a token with `cutover token create` and pass it with --token", true);
    }
    const outcome = this.ctx.enroll(hello.name, publicKey, hello.enrollmentToken, presented);
    if (!outcome.ok) {
      const byReason = {
        unknown: [RefusalCode.EnrollTokenUnknown, "the enrollment token is not one this coordinator issued"],
        used: [RefusalCode.EnrollTokenUsed, "the enrollment token was already used; create a new one with `cutover token create`"],
        expired: [RefusalCode.EnrollTokenExpired, "the enrollment token has expired; create a new one with `cutover token create`"],
        revoked: [RefusalCode.EnrollTokenRevoked, "the enrollment token was revoked; create a new one with `cutover token create`"],
      } as const;
      const [code, message] = byReason[outcome.reason];
      throw new Refused(code, message, true);
    }
    const host = outcome.host;
    const identity = `labels ${formatLabels(host.labels)}, address ${host.address || "(none)"} (${outcome.boundByToken ? "bound by the token" : "as the agent presented them"})`;
    this.log.info("enrolled new host", { host: host.name, remote: this.remote, identity });
    this.ctx.audit({ actor: `host ${host.name}`, action: "enroll", target: host.name, outcome: "enrolled", detail: identity });
    return { host, enrolled: true };
  }
}
