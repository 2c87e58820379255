import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { CloseCode, MAX_ARTIFACT_CHUNK, MAX_FRAME_BYTES, RefusalCode, type cutover, v1 } from "@cutover/protocol";
import { SOLE_LEADERSHIP, type Leadership } from "./leadership.js";
import type { CoordinatorKey } from "./coordinator-key.js";
import type { Logger } from "@cutover/log";
import type { Db } from "../store/database.js";
import type { HostRecord, HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";
import { AgentSession, type SessionLimits } from "./agent-session.js";
import { enrollHost } from "./enrollment.js";
import type { AuditStore } from "../store/audit.js";
import { checkEveryMs, DEFAULT_PING_INTERVAL_MS, DEFAULT_PING_TIMEOUT_MS, judgeLink, pingDue, type HostLiveness, type LivenessTimers } from "./liveness.js";
import { KeptReleases } from "./kept-releases.js";
import { RequestMetrics } from "./request-metrics.js";

export type { HostLiveness } from "./liveness.js";

export interface FleetOptions extends SessionLimits, LivenessTimers {
  /** Handshakes in progress (upgraded, no valid Hello yet) at once; upgrades beyond wait in a queue. */
  maxPendingHandshakes: number;
  /** Upgrades that may wait for a handshake slot, first come first served; only beyond this is one refused (503). */
  maxQueuedHandshakes: number;
}

export const DEFAULT_FLEET_OPTIONS: FleetOptions = {
  handshakeTimeoutMs: 10_000,
  maxFramesPerSec: 200,
  frameBurst: 400,
  heartbeatIntervalMs: 5_000,
  pingIntervalMs: DEFAULT_PING_INTERVAL_MS,
  pingTimeoutMs: DEFAULT_PING_TIMEOUT_MS,
  // A waiting upgrade holds about what one in progress does (its socket), so the split is about
  // CPU, not memory: at 1,000 a storm of 10,000 on a loaded machine left the coordinator idle at
  // 38% of a core while queued agents gave up after their 10 s (slots held by agents slow to answer
  // the Challenge). Every handshake in progress still ends at handshakeTimeoutMs.
  maxPendingHandshakes: 4_000,
  // A reconnect storm of a whole large fleet waits rather than being refused; each waiting upgrade
  // holds only its socket and request (a few KB).
  maxQueuedHandshakes: 20_000,
};

/** An agent's upgrade waiting for a handshake slot; `gone` once its socket closed while it waited. */
interface QueuedUpgrade {
  request: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  gone: boolean;
  onGone: () => void;
}

export type CommandOperation = Omit<cutover.v1.Command.$Properties, "commandId" | "deadlineUnixMs" | "sequence" | "signature" | "signed" | "mac" | "hostId" | "sessionNonce">;

export class CommandError extends Error {
  constructor(readonly code: "ERR_HOST_OFFLINE" | "ERR_COMMAND_TIMEOUT" | "ERR_HOST_DISCONNECTED" | "ERR_NOT_LEADER", message: string) {
    super(message);
  }
}

interface PendingCommand {
  resolve(result: cutover.v1.CommandResult): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  hostId: string;
  onEvent?: (event: cutover.v1.Event) => void;
}

/** Where the fleet reads release archives from when agents ask for them. */
export interface ArtifactSource {
  get(sha256: string): { size: number } | undefined;
  read(sha256: string, offset: number, length: number): Uint8Array;
  /** Only a host sent a command that names the artifact may have it (however it is labelled). */
  mayFetch(hostName: string, sha256: string): boolean;
}

/**
 * Every agent session, keyed by host. Owns the ws endpoint, host liveness and
 * the request/response pairing of commands.
 */
export class Fleet {
  readonly wss: WebSocketServer;
  /** The request counters of every host's nginx sites, from heartbeats. */
  readonly requests = new RequestMetrics();
  /** The release trees every host keeps, from heartbeats (`cutover releases`, `rollback --to`). */
  readonly kept = new KeptReleases();
  /** Who leads (docs/ha.md): only the leader accepts agent sessions and sends commands. Set by the server before it listens. */
  leadership: Leadership = SOLE_LEADERSHIP;
  private readonly sessions = new Map<string, AgentSession>();
  private readonly pending = new Map<string, PendingCommand>();
  private pendingHandshakes = 0;
  /** Upgrades waiting for a handshake slot, oldest first (a FIFO read from `queueHead`). */
  private queuedUpgrades: QueuedUpgrade[] = [];
  private queueHead = 0;
  private queuedLive = 0;
  private readonly logListeners = new Map<string, (host: string, source: string, lines: string[]) => void>();
  /** Told when what `cutover hosts` shows may have changed: a heartbeat, a session opened or closed, a host late or on time again. */
  private readonly hostListeners = new Set<() => void>();
  private readonly livenessTimer: NodeJS.Timeout;
  /** Agent bundles an upgrade offers (sha256 → bytes and the hosts it was sent to): served like artifacts. */
  private readonly bundles = new Map<string, { bytes: Uint8Array; hosts: Set<string> }>();
  private readonly hostEventListeners = new Set<(host: string, event: cutover.v1.Event) => void>();

  constructor(
    private readonly db: Db,
    private readonly hosts: HostStore,
    private readonly tokens: TokenStore,
    private readonly log: Logger,
    private readonly options: FleetOptions,
    private readonly key: CoordinatorKey,
    private readonly artifacts?: ArtifactSource,
    private readonly audit?: AuditStore,
    /** Observes each command's round trip (seconds) once it settles. */
    private readonly onCommandSettled?: (operation: string, status: string, seconds: number) => void,
  ) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
    this.livenessTimer = setInterval(() => this.checkLiveness(), checkEveryMs(options));
    this.livenessTimer.unref();
  }

  /**
   * Accepts an upgrade on the agent endpoint: at once while fewer than maxPendingHandshakes are in
   * progress, else in arrival order as slots free up (a reconnect storm is slow, not refused).
   */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.pendingHandshakes < this.options.maxPendingHandshakes && this.queuedLive === 0) {
      this.upgrade(request, socket, head);
      return;
    }
    if (this.queuedLive >= this.options.maxQueuedHandshakes) {
      this.log.warn("refusing agent connection: the handshake queue is full", { inProgress: this.pendingHandshakes, queued: this.queuedLive });
      socket.end("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const entry: QueuedUpgrade = { request, socket, head, gone: false, onGone: () => {} };
    // An agent that gave up waiting (its own handshake timeout) frees its place in the queue.
    entry.onGone = () => {
      if (entry.gone) return;
      entry.gone = true;
      this.queuedLive--;
    };
    socket.once("close", entry.onGone);
    this.queuedUpgrades.push(entry);
    this.queuedLive++;
    this.log.debug("agent upgrade waiting for a handshake slot", { queued: this.queuedLive, inProgress: this.pendingHandshakes });
  }

  /** Upgrades waiting for a handshake slot (for /metrics and the bench). */
  get queuedHandshakes(): number {
    return this.queuedLive;
  }

  /** ws completes a valid upgrade synchronously (no verifyClient), so `accept` has counted it before this returns. */
  private upgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request));
  }

  /** Starts queued upgrades while slots are free. */
  private admitQueued(): void {
    while (this.pendingHandshakes < this.options.maxPendingHandshakes && this.queueHead < this.queuedUpgrades.length) {
      const entry = this.queuedUpgrades[this.queueHead++]!;
      if (entry.gone) continue;
      entry.socket.off("close", entry.onGone);
      entry.gone = true;
      this.queuedLive--;
      if (entry.socket.destroyed) continue;
      this.upgrade(entry.request, entry.socket, entry.head);
    }
    // Drop the consumed prefix now and then, so the array does not grow for ever.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queuedUpgrades.length) {
      this.queuedUpgrades = this.queuedUpgrades.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private accept(ws: WebSocket, request: IncomingMessage): void {
    const remote = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
    // Freed once the agent is online or the socket closes, whichever comes first.
    this.pendingHandshakes++;
    let counted = true;
    const settle = () => {
      if (!counted) return;
      counted = false;
      this.pendingHandshakes--;
      this.admitQueued();
    };
    // The session wires itself to the socket; the fleet learns of it through onOnline.
    new AgentSession(ws, remote, {
      hosts: this.hosts,
      enroll: (name, key, token, presented) => enrollHost(this.db, this.hosts, this.tokens, name, key, token, presented),
      audit: (entry) => this.audit?.record(entry),
      log: this.log,
      limits: this.options,
      coordinatorKey: this.key,
      leadership: this.leadership,
      onOnline: (s) => {
        settle();
        const previous = this.sessions.get(s.host!.id);
        this.sessions.set(s.host!.id, s);
        if (previous && previous !== s) previous.close(CloseCode.Replaced, "replaced by a newer session of the same host");
        this.hostsChanged();
      },
      onHeartbeat: (s, beat) => {
        this.requests.report(s.host!.name, beat.requests);
        this.kept.report(s.host!.name, beat.keptReleases);
        this.hostsChanged();
      },
      onCommandResult: (s, result) => this.settleCommand(s, result),
      onEvent: (s, event) => {
        const pending = event.commandId ? this.pending.get(event.commandId) : undefined;
        if (pending?.onEvent && pending.hostId === s.host!.id) pending.onEvent(event);
        else this.log.child(s.name).info("event", { kind: event.kind, app: event.app, step: event.step, message: event.message });
        if (!event.commandId) for (const listener of this.hostEventListeners) listener(s.host!.name, event);
      },
      onArtifactRequest: (s, request) => this.serveArtifact(s, request),
      onLogLines: (s, lines) => this.logListeners.get(lines.streamId)?.(s.host!.name, lines.source, lines.lines),
      onClosed: (s) => {
        if (this.sessions.get(s.host!.id) === s) {
          this.sessions.delete(s.host!.id);
          this.log.info("host unreachable", { host: s.host!.name });
          this.failPendingFor(s.host!.id);
          this.hostsChanged();
        }
      },
    });
    ws.once("close", settle);
  }

  /** Calls `listener` whenever a host's state or reported figures may have changed, until the returned function is called. */
  subscribeHosts(listener: () => void): () => void {
    this.hostListeners.add(listener);
    return () => this.hostListeners.delete(listener);
  }

  private hostsChanged(): void {
    for (const listener of this.hostListeners) listener();
  }

  /** Receives the LogLines of a TailLogs stream until the returned function is called. */
  subscribeLogs(streamId: string, listener: (host: string, source: string, lines: string[]) => void): () => void {
    this.logListeners.set(streamId, listener);
    return () => this.logListeners.delete(streamId);
  }

  /** Receives the events agents send on their own (no command id), until the returned function is called. */
  subscribeHostEvents(listener: (host: string, event: cutover.v1.Event) => void): () => void {
    this.hostEventListeners.add(listener);
    return () => this.hostEventListeners.delete(listener);
  }

  /**
   * Serves an agent bundle to the named hosts over ArtifactRequest (as release artifacts are)
   * until the returned function is called: an agent fetches it when an UpgradeAgent names it.
   */
  offerBundle(sha256: string, bytes: Uint8Array, hostNames: string[]): () => void {
    const offer = { bytes, hosts: new Set(hostNames) };
    this.bundles.set(sha256, offer);
    return () => {
      if (this.bundles.get(sha256) === offer) this.bundles.delete(sha256);
    };
  }

  /** The host's current session (an opaque token): a restarted agent has a new one. */
  sessionOf(hostId: string): object | undefined {
    return this.sessions.get(hostId);
  }

  /** Resolves true once the host has a session (or false after `timeoutMs`). */
  async whenOnline(hostId: string, timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.sessions.has(hostId)) {
      if (Date.now() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return true;
  }

  /** Resolves true once this coordinator leads again (or false after `timeoutMs`). */
  private async whenLeading(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (!this.leadership.isLeader()) {
      if (Date.now() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return true;
  }

  liveness(hostId: string): HostLiveness {
    return this.sessions.get(hostId)?.liveness ?? "unreachable";
  }

  /** True while the host has a session (`online` or `late`): commands can reach it. */
  reachable(hostId: string): boolean {
    return this.sessions.has(hostId);
  }

  /** How overdue the host's heartbeat is (0 unless it is `late`). */
  heartbeatOverdueMs(hostId: string): number {
    const session = this.sessions.get(hostId);
    return session?.liveness === "late" ? session.heartbeatOverdueMs : 0;
  }

  onlineCount(): number {
    return this.sessions.size;
  }

  /** Pings what is due, marks late hosts, and cuts sessions whose link is dead (liveness.ts has the rule). */
  private checkLiveness(): void {
    const now = Date.now();
    const suspects: AgentSession[] = [];
    for (const session of this.sessions.values()) {
      const verdict = judgeLink(session.clock, now, this.options);
      if (verdict.state === "dead") {
        suspects.push(session);
        continue;
      }
      if (session.judged(verdict)) this.hostsChanged();
      if (pingDue(session.clock, now, this.options)) session.ping(now);
    }
    if (suspects.length === 0) return;
    // Timers run before pending socket reads: a coordinator that was itself stalled may have the
    // pong already waiting. Judge again once this turn's I/O has been read.
    setImmediate(() => {
      for (const session of suspects) {
        const verdict = judgeLink(session.clock, Date.now(), this.options);
        if (verdict.state === "dead" && session.state !== "closed") {
          session.terminate(`no answer to a ping for ${Math.round(verdict.unansweredForMs / 1000)} s (ping timeout ${this.options.pingTimeoutMs / 1000} s)`);
        }
      }
    });
  }

  /** Sends one command to a host and resolves with its result. */
  sendCommand(
    host: HostRecord,
    operation: CommandOperation,
    timeoutMs: number,
    onEvent?: (event: cutover.v1.Event) => void,
    /** Re-ask with the id of a command sent before (the agent answers it from its stored result). */
    commandId: string = randomUUID(),
  ): Promise<cutover.v1.CommandResult> {
    // Only the leader sends, and only while its lease is fresh on its own clock (leadership.ts):
    // a leader whose renewal is late waits for it rather than send what a new leader may contradict.
    if (!this.leadership.isLeader()) {
      return this.whenLeading(timeoutMs).then((leading) =>
        leading ? this.sendCommand(host, operation, timeoutMs, onEvent, commandId) : Promise.reject(new CommandError("ERR_NOT_LEADER", `this coordinator does not lead: nothing sent to ${host.name}`)),
      );
    }
    const session = this.sessions.get(host.id);
    if (!session) return Promise.reject(new CommandError("ERR_HOST_OFFLINE", `host ${host.name} is unreachable`));
    const action = `command ${Object.keys(operation).find((k) => (operation as Record<string, unknown>)[k] !== undefined) ?? "unknown"}`;
    const started = performance.now();
    const record = (outcome: string, detail = "") => {
      this.onCommandSettled?.(action.slice("command ".length), outcome, (performance.now() - started) / 1000);
      this.audit?.record({ actor: "coordinator", action, target: host.name, outcome, detail: `${commandId} ${detail}`.trim() });
    };
    return new Promise<cutover.v1.CommandResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(commandId);
        reject(new CommandError("ERR_COMMAND_TIMEOUT", `host ${host.name} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(commandId, { resolve, reject, timer, hostId: host.id, onEvent });
      // Bound to this host, this session and its next sequence: a relay cannot move it to another
      // host, replay it on a later session, or reorder it.
      session.sendCommand({ ...operation, commandId, deadlineUnixMs: Date.now() + timeoutMs });
    }).then(
      (result) => {
        record(v1.CommandResult.Status[result.status] ?? String(result.status), result.errorCode ? `${result.errorCode}: ${result.message}` : "");
        return result;
      },
      (error: Error) => {
        record((error as CommandError).code ?? "ERR_INTERNAL", error.message);
        throw error;
      },
    );
  }

  private serveArtifact(session: AgentSession, request: cutover.v1.ArtifactRequest): void {
    const reply = (chunk: Omit<cutover.v1.ArtifactChunk.$Properties, "requestId" | "sha256">) =>
      session.send({ artifactChunk: { requestId: request.requestId, sha256: request.sha256, ...chunk } });
    const bundle = this.bundles.get(request.sha256);
    if (bundle && bundle.hosts.has(session.host!.name)) {
      const size = bundle.bytes.length;
      if (request.offset > size) return reply({ error: `offset ${request.offset} is past the end (${size} bytes)` });
      const start = Number(request.offset);
      const length = Math.min(request.length, MAX_ARTIFACT_CHUNK, size - start);
      return reply({ offset: request.offset, totalSize: size, data: bundle.bytes.subarray(start, start + length) });
    }
    if (!this.artifacts?.mayFetch(session.host!.name, request.sha256)) {
      this.log.child(session.name).warn("refused an artifact to a host that was sent no command for it", { sha256: request.sha256.slice(0, 12) });
      return reply({ error: `this host was sent no command for artifact ${request.sha256}` });
    }
    const artifact = this.artifacts?.get(request.sha256);
    if (!artifact) return reply({ error: `the coordinator has no artifact ${request.sha256}` });
    if (request.offset > artifact.size) return reply({ error: `offset ${request.offset} is past the end (${artifact.size} bytes)` });
    const length = Math.min(request.length, MAX_ARTIFACT_CHUNK, artifact.size - request.offset);
    reply({ offset: request.offset, totalSize: artifact.size, data: this.artifacts!.read(request.sha256, request.offset, length) });
  }

  private settleCommand(session: AgentSession, result: cutover.v1.CommandResult): void {
    const pending = this.pending.get(result.commandId);
    if (!pending || pending.hostId !== session.host!.id) {
      this.log.debug("result for an unknown or finished command", { host: session.name, commandId: result.commandId });
      return;
    }
    this.pending.delete(result.commandId);
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  /** Removes the host from the fleet: its session is refused, its key refused from then on. */
  remove(host: HostRecord, by: string): void {
    this.hosts.remove(host.id, by);
    this.requests.forget(host.name);
    this.kept.forget(host.name);
    this.sessions.get(host.id)?.refuse(RefusalCode.HostRemoved, `this host was removed from the fleet by ${by}; to join again, clear the agent's state dir and enroll with a new token`);
  }

  private failPendingFor(hostId: string): void {
    for (const [id, pending] of this.pending) {
      if (pending.hostId !== hostId) continue;
      this.pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(new CommandError("ERR_HOST_DISCONNECTED", "the host disconnected before answering"));
    }
  }

  close(): void {
    clearInterval(this.livenessTimer);
    for (const session of this.sessions.values()) session.close(CloseCode.GoingAway, "coordinator shutting down");
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }
}

export const CommandStatus = v1.CommandResult.Status;
