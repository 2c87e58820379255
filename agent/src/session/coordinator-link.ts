import { hostname } from "node:os";
import type { TLSSocket } from "node:tls";
import WebSocket from "ws";
import {
  CloseCode,
  COMMAND_MAC,
  decodeEnvelope,
  normalizeFingerprint,
  encodeEnvelope,
  helloProofBytes,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  ProtocolErrorCode,
  RefusalCode,
  type Envelope,
  type EnvelopeInit,
  type cutover,
} from "@cutover/protocol";
import { backoffDelayMs, type Logger } from "@cutover/log";
import type { Identity } from "../identity.js";
import type { CoordinatorUrls } from "./coordinator-urls.js";
import { newKeyShare, type KeyShare } from "./session-key.js";

export interface LinkOptions {
  /** The coordinators' agent endpoints (ws:// or wss://), tried in turn; a NOT_LEADER refusal may name one of them. */
  coordinators: Pick<CoordinatorUrls, "all" | "trusted">;
  identity: Identity;
  enrollmentToken?: string;
  address: string;
  labels: Record<string, string>;
  capabilities: string[];
  agentVersion: string;
  reconnectBaseMs: number;
  reconnectCapMs: number;
  /** sha256 fingerprint every coordinator's TLS certificate must have (wss:// only). */
  fingerprint?: string;
  /** Time allowed for the WebSocket upgrade and for the Challenge→Welcome exchange. */
  handshakeTimeoutMs: number;
  log: Logger;
  /** What Hello and Heartbeat report; the request counters and the kept releases go in heartbeats only. */
  report(): Promise<{
    resources: cutover.v1.Resources.$Properties;
    instances: cutover.v1.AppInstance.$Properties[];
    requests?: () => Promise<cutover.v1.RequestCounters.$Properties[]>;
    keptReleases?: () => Promise<cutover.v1.KeptRelease.$Properties[]>;
  }>;
  /** False refuses the session (a key other than the pinned one, a Welcome not signed for this session, an epoch below one seen before). */
  onWelcome(welcome: cutover.v1.Welcome, session: { nonce: Uint8Array; agentPublicKey: Uint8Array; keyShare?: KeyShare }): Promise<boolean>;
  /** `sessionNonce`: the Challenge nonce of the session the command arrived on (commands are signed for one session). */
  onCommand(command: cutover.v1.Command, reply: (result: cutover.v1.CommandResult.$Properties) => void, sessionNonce: Uint8Array): Promise<void>;
  /** The session ended (streams tied to it should stop). */
  onDisconnect?(): void;
  /** A refusal that retrying cannot fix (bad token, key mismatch): the agent should stop. */
  onPermanentRefusal(refusal: cutover.v1.Refusal): void;
}

/**
 * A coordinator that sends nothing on an open link for this long, not even the WebSocket ping
 * it sends every `--ping-interval` (default 5 s), is taken for gone: a paused or frozen leader
 * keeps its TCP connections open, and only this silence tells the agent to try the next member.
 */
export const COORDINATOR_SILENCE_MS = 30_000;

/** Bounds on Welcome.heartbeat_interval_ms (a uint32 on the wire; setInterval takes at most 2^31-1). */
export const MIN_HEARTBEAT_INTERVAL_MS = 100;
export const MAX_HEARTBEAT_INTERVAL_MS = 10 * 60 * 1000;

/**
 *   idle ─start()─▶ connecting ─socket open─▶ handshaking ─Welcome─▶ online
 *                       ▲                          │                   │
 *                       └──── backoff ◀── socket closes / error ◀──────┘
 *   any ─stop() or permanent refusal─▶ stopped
 *
 * One socket at a time: the next connection is dialled only once the last one has closed, so a
 * session under a newer epoch never runs beside an older one. From backoff the link dials the
 * leader a NOT_LEADER refusal named (when trusted), else the next coordinator: at once until
 * each was tried in this round, then after the backoff delay (one coordinator: every time).
 */
export type LinkState = "idle" | "connecting" | "handshaking" | "online" | "backoff" | "stopped";
const ALLOWED: Record<LinkState, LinkState[]> = {
  idle: ["connecting", "stopped"],
  connecting: ["handshaking", "backoff", "stopped"],
  handshaking: ["online", "backoff", "stopped"],
  online: ["backoff", "stopped"],
  backoff: ["connecting", "stopped"],
  stopped: [],
};

/** The agent's one WebSocket to the coordinator: dial out, prove identity, heartbeat, reconnect. */
export class CoordinatorLink {
  state: LinkState = "idle";
  private socket: WebSocket | undefined;
  /** Full rounds over the coordinators without a session (the backoff grows with it). */
  private attempt = 0;
  /** The coordinator the current (or last) connection dialled. */
  private url: string;
  /** Connections since the last round ended or the last session was welcomed. */
  private triedThisRound = 0;
  /** A trusted leader the last NOT_LEADER refusal named: the next connection goes there. */
  private leaderHint: string | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private handshakeTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private onlineWaiters: (() => void)[] = [];
  private readonly chunkWaiters = new Map<string, { resolve(chunk: cutover.v1.ArtifactChunk): void; reject(error: Error): void }>();
  private nextRequestId = 1;
  /** Challenge nonce of the current socket's session (empty until its Challenge). */
  private sessionNonce: Uint8Array = new Uint8Array();
  /** The X25519 share the current session's Hello sent (capability "commands.mac"); a new one per session. */
  private keyShare: KeyShare | undefined;
  /** Frames of the coordinator, handled one after another. */
  private inbound: Promise<void> = Promise.resolve();

  constructor(private readonly options: LinkOptions) {
    const first = options.coordinators.all()[0];
    if (first === undefined) throw new Error("the coordinator link needs at least one coordinator URL");
    this.url = first;
  }

  private transition(to: LinkState, why: string, fields: Record<string, string> = {}): void {
    const from = this.state;
    if (from === to) return;
    if (!ALLOWED[from].includes(to)) throw new Error(`coordinator link cannot go from ${from} to ${to}`);
    this.state = to;
    const level = to === "backoff" && from === "online" ? "warn" : "info";
    this.options.log[level]("coordinator link", { from, to, why, ...fields });
    if (to === "online") {
      for (const resolve of this.onlineWaiters.splice(0)) resolve();
    }
  }

  start(): void {
    this.connect();
  }

  /** Resolves when the link is online (immediately if it already is). */
  whenOnline(): Promise<void> {
    if (this.state === "online") return Promise.resolve();
    return new Promise((resolve) => this.onlineWaiters.push(resolve));
  }

  send(envelope: EnvelopeInit): boolean {
    if (this.state !== "online" || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(encodeEnvelope(envelope), { binary: true });
    return true;
  }

  /** Asks the coordinator for part of an artifact; rejects if the link is down or drops first. */
  requestArtifactChunk(sha256: string, offset: number, length: number): Promise<cutover.v1.ArtifactChunk> {
    const requestId = String(this.nextRequestId++);
    return new Promise((resolve, reject) => {
      this.chunkWaiters.set(requestId, { resolve, reject });
      if (!this.send({ artifactRequest: { requestId, sha256, offset, length } })) {
        this.chunkWaiters.delete(requestId);
        reject(new Error("the coordinator link is down"));
      }
    });
  }

  private failChunkWaiters(why: string): void {
    for (const waiter of this.chunkWaiters.values()) waiter.reject(new Error(why));
    this.chunkWaiters.clear();
  }

  stop(): void {
    this.clearTimers();
    this.transition("stopped", "agent stopping");
    this.socket?.close(1001, "agent stopping");
    this.socket = undefined;
  }

  private clearTimers(): void {
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.handshakeTimer);
    clearInterval(this.silenceTimer);
  }

  private connect(): void {
    this.transition("connecting", `attempt ${this.attempt + 1} to ${this.url}`);
    // A new connection is a new session: nothing is trusted for it until its own Challenge
    // (a Welcome or command recorded on the last one must not pass as this one's).
    this.sessionNonce = new Uint8Array();
    this.keyShare = undefined;
    const pinned = this.options.fingerprint && this.url.startsWith("wss:") ? normalizeFingerprint(this.options.fingerprint) : undefined;
    const socket = new WebSocket(this.url, {
      maxPayload: MAX_FRAME_BYTES,
      perMessageDeflate: false,
      handshakeTimeout: this.options.handshakeTimeoutMs,
      // A pinned self-signed certificate is checked by its fingerprint below, not by a CA.
      ...(pinned && { rejectUnauthorized: false }),
    });
    this.socket = socket;
    let closeReason = "connection failed";
    if (pinned) {
      socket.on("upgrade", (response) => {
        const presented = `sha256:${(response.socket as TLSSocket).getPeerCertificate().fingerprint256}`;
        if (presented !== pinned) {
          closeReason = `the coordinator's certificate is ${presented}, not the pinned ${pinned}`;
          this.options.log.error("coordinator certificate does not match the pinned fingerprint; not talking to it", { presented, pinned });
          socket.terminate();
        }
      });
    }
    let heardAt = performance.now();
    const heard = () => (heardAt = performance.now());
    socket.on("ping", heard);
    socket.on("open", () => {
      heard();
      this.silenceTimer = setInterval(() => {
        if (performance.now() - heardAt < COORDINATOR_SILENCE_MS) return;
        closeReason = `the coordinator sent nothing, not even a ping, for ${COORDINATOR_SILENCE_MS / 1000} s`;
        this.options.log.warn("coordinator link silent; dropping it to try the next coordinator", { url: this.url, silentMs: Math.round(performance.now() - heardAt) });
        socket.terminate();
      }, COORDINATOR_SILENCE_MS / 6);
      this.transition("handshaking", "connected");
      this.handshakeTimer = setTimeout(() => {
        closeReason = "no Welcome in time";
        socket.terminate();
      }, this.options.handshakeTimeoutMs);
    });
    socket.on("message", (data, isBinary) => {
      heard();
      try {
        if (!isBinary) throw new ProtocolError(ProtocolErrorCode.TextFrame, "text frame from coordinator");
        const envelope = decodeEnvelope(data as Buffer);
        // In order: a Command right behind the Welcome waits until the session is online to answer.
        this.inbound = this.inbound
          .then(() => (this.socket === socket ? this.onEnvelope(envelope) : undefined))
          .catch((error: Error) => {
            this.options.log.error("failed to handle coordinator frame", { error: error.message });
          });
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.options.log.warn("protocol error from coordinator; reconnecting", { code: error.code, error: error.message });
        closeReason = error.code;
        socket.close(error.closeCode, error.code);
      }
    });
    socket.on("error", (error) => {
      closeReason = (error as NodeJS.ErrnoException).code ?? error.message;
    });
    socket.on("close", (code, reason) => {
      if (this.socket !== socket) return;
      this.clearTimers();
      this.socket = undefined;
      this.failChunkWaiters("the coordinator link dropped");
      this.options.onDisconnect?.();
      if (this.state === "stopped") return;
      this.dialNext(reason.length > 0 ? `${code} ${reason.toString()}` : `${code} ${closeReason}`);
    });
  }

  /** After a connection ended: picks the next coordinator (see the state diagram) and waits the backoff when a round is over. */
  private dialNext(why: string): void {
    const urls = this.options.coordinators.all();
    const next = this.leaderHint ?? urls[(urls.indexOf(this.url) + 1) % urls.length] ?? this.url;
    this.leaderHint = undefined;
    let delay = 0;
    if (++this.triedThisRound >= urls.length) {
      this.triedThisRound = 0;
      delay = backoffDelayMs(this.attempt++, this.options.reconnectBaseMs, this.options.reconnectCapMs);
    }
    const where = urls.length > 1 || next !== this.url ? ` ${next}` : "";
    this.url = next;
    this.transition("backoff", delay > 0 ? `${why}; retrying${where} in ${delay} ms` : `${why}; trying${where} now`);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private async onEnvelope(envelope: Envelope): Promise<void> {
    switch (envelope.body) {
      case "challenge":
        return this.sendHello(envelope.challenge as cutover.v1.Challenge);
      case "welcome": {
        const welcome = envelope.welcome as cutover.v1.Welcome;
        clearTimeout(this.handshakeTimer);
        const socket = this.socket;
        const accepted = await this.options.onWelcome(welcome, { nonce: this.sessionNonce, agentPublicKey: this.options.identity.publicKey, keyShare: this.keyShare }).catch((error: Error) => {
          this.options.log.error("cannot take the coordinator's Welcome; closing the session", { error: error.message });
          return false;
        });
        // The socket may have closed while the pin was being saved: that session is over.
        if (socket === undefined || this.socket !== socket) return;
        if (!accepted) {
          this.socket?.close(CloseCode.AuthRefused, "coordinator not trusted");
          return;
        }
        this.attempt = 0;
        this.triedThisRound = 0;
        this.transition("online", welcome.enrolled ? "enrolled" : "authenticated", { coordinator: this.url });
        // A second Welcome re-arms the one heartbeat loop instead of starting another.
        clearInterval(this.heartbeatTimer);
        // Node runs a timer above 2^31-1 ms after 1 ms: keep what the coordinator asks for in range.
        const every = Math.min(MAX_HEARTBEAT_INTERVAL_MS, Math.max(MIN_HEARTBEAT_INTERVAL_MS, welcome.heartbeatIntervalMs));
        this.heartbeatTimer = setInterval(() => void this.heartbeat(), every);
        return;
      }
      case "refusal": {
        const refusal = envelope.refusal as cutover.v1.Refusal;
        // Never permanent, whatever the frame says: another coordinator leads.
        if (refusal.code === RefusalCode.NotLeader) return this.followLeader(refusal);
        this.options.log.error("coordinator refused this agent", { code: refusal.code, reason: refusal.message, permanent: refusal.permanent });
        if (refusal.permanent) {
          this.stop();
          this.options.onPermanentRefusal(refusal);
        }
        return;
      }
      case "command": {
        const command = envelope.command as cutover.v1.Command;
        // Not awaited: a long command must not hold up the frames behind it.
        void this.options.onCommand(command, (result) => this.send({ commandResult: result }), this.sessionNonce).catch((error: Error) =>
          this.options.log.error("failed to handle a command", { commandId: command.commandId, error: error.message }),
        );
        return;
      }
      case "artifactChunk": {
        const chunk = envelope.artifactChunk as cutover.v1.ArtifactChunk;
        const waiter = this.chunkWaiters.get(chunk.requestId);
        this.chunkWaiters.delete(chunk.requestId);
        waiter?.resolve(chunk);
        return;
      }
      case undefined:
        this.options.log.warn("ignoring unknown message kind from coordinator");
        return;
      default:
        this.options.log.warn("ignoring message agents do not expect", { body: envelope.body });
    }
  }

  /** A follower refused the session: the next connection goes to the leader it names if this agent trusts that URL, else to the next coordinator. */
  private followLeader(refusal: cutover.v1.Refusal): void {
    const named = refusal.leaderUrl ?? "";
    const leader = named ? this.options.coordinators.trusted(named) : undefined;
    if (leader) {
      this.leaderHint = leader;
      this.options.log.info("coordinator does not lead; going to the leader it names", { coordinator: this.url, leader });
    } else {
      this.options.log.warn("coordinator does not lead and names no leader this agent trusts (not configured, not a member a signed Welcome listed); trying the next coordinator", {
        coordinator: this.url,
        named: named || "(none)",
      });
    }
    this.socket?.close(CloseCode.Normal, "not the leader");
  }

  private async sendHello(challenge: cutover.v1.Challenge): Promise<void> {
    const { identity } = this.options;
    this.sessionNonce = challenge.nonce;
    this.keyShare = this.options.capabilities.includes(COMMAND_MAC) ? newKeyShare() : undefined;
    const { resources, instances } = await this.options.report();
    const signature = identity.sign(helloProofBytes(challenge.nonce, identity.name, identity.publicKey));
    this.socket?.send(
      encodeEnvelope({
        hello: {
          protocolVersion: PROTOCOL_VERSION,
          name: identity.name,
          publicKey: identity.publicKey,
          signature,
          enrollmentToken: identity.enrolled ? "" : (this.options.enrollmentToken ?? ""),
          hostname: hostname(),
          agentVersion: this.options.agentVersion,
          address: this.options.address,
          labels: this.options.labels,
          capabilities: this.options.capabilities,
          resources,
          instances,
          sessionKeyShare: this.keyShare?.share,
        },
      }),
      { binary: true },
    );
  }

  /** Sends a heartbeat now (after a deploy), so the coordinator's view does not wait for the next tick. */
  heartbeatNow(): void {
    if (this.state === "online") void this.heartbeat();
  }

  private async heartbeat(): Promise<void> {
    const { resources, instances, requests, keptReleases } = await this.options.report();
    this.send({ heartbeat: { resources, instances, requests: (await requests?.()) ?? [], keptReleases: (await keptReleases?.()) ?? [] } });
  }
}
