import { createPublicKey, randomBytes, verify } from "node:crypto";
import type { WebSocket } from "ws";
import {
  CloseCode,
  decodeEnvelope,
  encodeEnvelope,
  helloProofBytes,
  isValidLabel,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  ProtocolErrorCode,
  RefusalCode,
  type Envelope,
  type EnvelopeInit,
  type cutover,
} from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import type { HostRecord, HostStore } from "../store/hosts.js";
import type { EnrollOutcome } from "./enrollment.js";
import { TokenBucket } from "./rate-limit.js";
import { instancesFromWire, resourcesFromWire } from "./resources.js";
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
  enroll(name: string, publicKey: Uint8Array, token: string): EnrollOutcome;
  log: Logger;
  limits: SessionLimits;
  /** Sent in Welcome: agents verify commands with it. */
  coordinatorPublicKey: Uint8Array;
  /** Called once the agent is authenticated; the fleet closes any older session of the same host. */
  onOnline(session: AgentSession): void;
  onHeartbeat(session: AgentSession): void;
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
  constructor(readonly code: string, message: string, readonly permanent: boolean) {
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
  private readonly nonce = randomBytes(NONCE_BYTES);
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
    this.send({ challenge: { nonce: this.nonce, protocolVersion: PROTOCOL_VERSION } });
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

  /** Takes the fleet's verdict of a live link; logs each change between online and late once. */
  judged(verdict: Exclude<LivenessVerdict, { state: "dead" }>): void {
    this.heartbeatOverdueMs = verdict.state === "late" ? verdict.heartbeatOverdueMs : 0;
    if (verdict.state === this.liveness) return;
    const from = this.liveness;
    this.liveness = verdict.state;
    if (verdict.state === "late") this.log.warn("host late: heartbeats overdue", { host: this.name, from, to: "late", overdueMs: verdict.heartbeatOverdueMs });
    else this.log.info("host on time again", { host: this.name, from, to: "online" });
  }

  private sawLinkAlive(): void {
    this.clock.unansweredPingSince = undefined;
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
        this.ctx.onHeartbeat(this);
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
      const { host, enrolled } = this.authenticate(hello);
      this.host = host;
      this.log = this.ctx.log.child(host.name);
      const labels: Record<string, string> = {};
      for (const [key, value] of Object.entries(hello.labels ?? {})) {
        if (isValidLabel(key, value)) labels[key] = value;
        else this.log.warn("ignoring invalid label", { key, value });
      }
      this.ctx.hosts.introduce(host.id, {
        address: hello.address ?? "",
        hostname: hello.hostname ?? "",
        labels,
        capabilities: hello.capabilities ?? [],
        agentVersion: hello.agentVersion ?? "",
      });
      if (hello.resources) this.ctx.hosts.report(host.id, resourcesFromWire(hello.resources), instancesFromWire(hello.instances));
      this.host = this.ctx.hosts.byName(host.name)!;
      this.clock.lastHeartbeatAt = this.clock.lastPingAt = Date.now();
      this.send({
        welcome: {
          hostId: host.id,
          heartbeatIntervalMs: this.ctx.limits.heartbeatIntervalMs,
          protocolVersion: Math.min(PROTOCOL_VERSION, hello.protocolVersion),
          enrolled,
          coordinatorPublicKey: this.ctx.coordinatorPublicKey,
        },
      });
      this.transition("online", enrolled ? "enrolled" : "authenticated");
    } catch (error) {
      if (!(error instanceof Refused)) throw error;
      this.log.warn("refused agent", { name: hello.name, remote: this.remote, code: error.code, reason: error.message });
      this.send({ refusal: { code: error.code, message: error.message, permanent: error.permanent } });
      this.close(CloseCode.AuthRefused, error.code);
    }
  }

  /** Proves the agent holds its key, then enrolls it (first contact) or finds its record. */
  private authenticate(hello: cutover.v1.Hello): { host: HostRecord; enrolled: boolean } {
    const publicKey = hello.publicKey;
    const signed = helloProofBytes(this.nonce, hello.name, publicKey);
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
    const known = this.ctx.hosts.byPublicKey(publicKey);
    if (known) {
      if (known.name !== hello.name) {
        throw new Refused(RefusalCode.KeyMismatch, `this key is enrolled as host "${known.name}", not "${hello.name}"; start the agent with --name ${known.name}`, true);
      }
      return { host: known, enrolled: false };
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
    const outcome = this.ctx.enroll(hello.name, publicKey, hello.enrollmentToken);
    if (!outcome.ok) {
      const byReason = {
        unknown: [RefusalCode.EnrollTokenUnknown, "the enrollment token is not one this coordinator issued"],
        used: [RefusalCode.EnrollTokenUsed, "the enrollment token was already used; create a new one with `cutover token create`"],
        expired: [RefusalCode.EnrollTokenExpired, "the enrollment token has expired; create a new one with `cutover token create`"],
      } as const;
      const [code, message] = byReason[outcome.reason];
      throw new Refused(code, message, true);
    }
    const host = outcome.host;
    this.log.info("enrolled new host", { host: host.name, remote: this.remote });
    return { host, enrolled: true };
  }
}
