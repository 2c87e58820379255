// Child process of bench/scale.mjs: many simulated agents in one process.
// Each session speaks the real wire protocol (the generated protobuf code of
// @cutover/protocol) with a real Ed25519 identity: it answers the Challenge
// with a signed Hello (enrolling with a one-time token on first contact),
// heartbeats at the interval the Welcome names, answers Ping with Pong and
// Deploy/Rollback with an OK result carrying a DeployOutcome (after the step
// events a real agent sends), and reconnects with the real agent's capped,
// jittered backoff. Like a real agent it announces "commands.mac" with a fresh
// X25519 share per session, verifies the Welcome's Ed25519 signature over both
// shares, derives the session key (HKDF) and takes only commands whose
// HMAC-SHA256 verifies and whose sequence rises on the session; a share of the
// sessions (`legacyShare`) behaves like an agent from before the capability and
// takes Ed25519-signed commands, checked with the coordinator's key.
// Driven by the parent over IPC; see scale.mjs.
import { createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, sign, timingSafeEqual, verify } from "node:crypto";
import WebSocket from "ws";

const { COMMAND_MAC, commandKeyInfo, decodeEnvelope, encodeEnvelope, helloProofBytes, MAX_FRAME_BYTES, openSignedCommand, PROTOCOL_VERSION, v1, welcomeProofBytes } = await import("../packages/protocol/dist/index.js");
const { backoffDelayMs } = await import("../packages/log/dist/index.js");

const Status = v1.CommandResult.Status;
// PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410).
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** The real agent's reconnect settings (agent/src/config.ts): base 250 ms, cap 15 s, handshake 10 s. */
const RECONNECT_BASE_MS = 250;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** The step events a real agent sends for a deploy without an artifact (preflight, start, health ×2, switch, done). */
const DEPLOY_STEPS = [
  ["preflight", "preflight for RELEASE on COLOR"],
  ["start", "starting RELEASE on COLOR"],
  ["health", "health gate for COLOR"],
  ["health", "COLOR is healthy after 0 ms"],
  ["switch", "nginx switched to COLOR in 0.0 ms (simulated)"],
  ["done", "RELEASE live on COLOR"],
];

/** The same key for the same name in every run: derived from the name, so enrolled hosts can come back. */
export function simKey(name) {
  const seed = createHash("sha256").update(`cutover-bench-scale:${name}`).digest();
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
  const publicKey = Buffer.from(privateKey.export({ format: "jwk" }).x, "base64url");
  return { privateKey, publicKey };
}

const GiB = 2 ** 30;

function resources() {
  return {
    cpuLoadPercent: 5 + Math.random() * 10,
    memTotalBytes: 8 * GiB,
    memAvailableBytes: 6 * GiB,
    disks: [{ path: "/var/lib/cutover/agent", mount: "/", freeBytes: 40 * GiB, totalBytes: 64 * GiB }],
    load1: 0.2,
    load5: 0.2,
    load15: 0.2,
    cpuCount: 4,
    sampledAtUnixMs: Date.now(),
  };
}

const counters = {
  online: 0,
  welcomes: 0,
  enrolled: 0,
  refusals: {},
  upgradeRejects: {},
  connectErrors: {},
  /** The ws upgrade (TCP connect + HTTP 101) did not complete within the agent's 10 s. */
  upgradeTimeouts: 0,
  /** Upgraded, but no Welcome within 10 s. */
  handshakeTimeouts: 0,
  dropsWhileOnline: {},
  pings: 0,
  /** Commands refused before acting (unsigned, bad signature or MAC, replayed sequence). */
  commandsRefused: 0,
  /** Welcomes whose signature did not verify (the session is closed, as a real agent does). */
  welcomesRefused: 0,
  /** Commands taken under a session MAC, and under an Ed25519 signature. */
  macCommands: 0,
  signedCommands: 0,
  deploys: 0,
  heartbeats: 0,
  lastOnlineAt: 0,
};
const bump = (map, key) => (map[key] = (map[key] ?? 0) + 1);

class SimAgent {
  state = "idle";
  attempt = 0;
  socket = undefined;
  heartbeatTimer = undefined;
  reconnectTimer = undefined;
  handshakeTimer = undefined;
  apps = new Map();
  coordinatorKey = undefined;
  lastSequence = 0;

  constructor(name, token, settings, legacy) {
    this.name = name;
    this.token = token;
    this.settings = settings;
    this.key = simKey(name);
    /** Like an agent from before "commands.mac": no key share, signed commands. */
    this.legacy = legacy;
  }

  connect() {
    if (this.state === "stopped") return;
    this.state = "connecting";
    const socket = new WebSocket(this.settings.url, {
      perMessageDeflate: false,
      maxPayload: MAX_FRAME_BYTES,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      localAddress: this.settings.localAddress,
    });
    this.socket = socket;
    let why = "connection failed";
    socket.on("open", () => {
      this.state = "handshaking";
      this.handshakeTimer = setTimeout(() => {
        counters.handshakeTimeouts++;
        why = "no Welcome in time";
        socket.terminate();
      }, HANDSHAKE_TIMEOUT_MS);
    });
    socket.on("message", (data) => this.onEnvelope(decodeEnvelope(data)));
    socket.on("error", (error) => {
      const status = /Unexpected server response: (\d+)/.exec(error.message)?.[1];
      if (status) bump(counters.upgradeRejects, status);
      else if (/handshake has timed out/.test(error.message)) counters.upgradeTimeouts++;
      else bump(counters.connectErrors, error.code ?? error.message);
      why = error.message;
    });
    socket.on("close", (code) => {
      if (this.socket !== socket) return;
      clearInterval(this.heartbeatTimer);
      clearTimeout(this.handshakeTimer);
      if (this.state === "online") {
        counters.online--;
        bump(counters.dropsWhileOnline, String(code));
      }
      this.socket = undefined;
      if (this.state === "stopped") return;
      this.state = "backoff";
      const delay = backoffDelayMs(this.attempt++, RECONNECT_BASE_MS, this.settings.maxBackoffMs);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
      void why;
    });
  }

  send(envelope) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(encodeEnvelope(envelope), { binary: true });
  }

  onEnvelope(envelope) {
    switch (envelope.body) {
      case "challenge": {
        this.nonce = envelope.challenge.nonce;
        this.keyShare = this.legacy ? undefined : newKeyShare();
        this.session = undefined;
        const signature = sign(null, helloProofBytes(envelope.challenge.nonce, this.name, this.key.publicKey), this.key.privateKey);
        this.send({
          hello: {
            protocolVersion: PROTOCOL_VERSION,
            name: this.name,
            publicKey: this.key.publicKey,
            signature,
            enrollmentToken: this.token ?? "",
            hostname: this.name,
            agentVersion: "0.1.0-sim",
            address: this.settings.localAddress,
            labels: this.settings.labels,
            capabilities: this.legacy ? ["nginx.reload"] : ["nginx.reload", COMMAND_MAC],
            resources: resources(),
            instances: this.instances(),
            sessionKeyShare: this.keyShare?.share,
          },
        });
        return;
      }
      case "welcome": {
        clearTimeout(this.handshakeTimer);
        // As the real agent (agent/src/session/command-verifier.ts): the signature covers both shares.
        const welcome = envelope.welcome;
        this.coordinatorKey = coordinatorKeyObject(welcome.coordinatorPublicKey);
        const theirs = welcome.sessionKeyShare?.length ? welcome.sessionKeyShare : undefined;
        const shares = theirs && this.keyShare ? { agent: this.keyShare.share, coordinator: theirs } : undefined;
        if ((theirs && !this.keyShare) || !this.coordinatorKey || !verify(null, welcomeProofBytes({ nonce: this.nonce, hostId: welcome.hostId, agentPublicKey: this.key.publicKey, shares }), this.coordinatorKey, welcome.signature)) {
          counters.welcomesRefused++;
          this.socket?.close(4401, "coordinator not trusted");
          return;
        }
        this.session = { commandKey: shares ? deriveKey(this.keyShare, theirs, this.nonce, welcome.hostId) : undefined, lastMacSequence: 0, hostId: welcome.hostId };
        this.attempt = 0;
        this.state = "online";
        this.token = undefined;
        counters.online++;
        counters.welcomes++;
        if (envelope.welcome.enrolled) counters.enrolled++;
        counters.lastOnlineAt = Date.now();
        this.heartbeatTimer = setInterval(() => this.heartbeat(), envelope.welcome.heartbeatIntervalMs);
        return;
      }
      case "refusal":
        bump(counters.refusals, envelope.refusal.code);
        if (envelope.refusal.permanent) this.stop();
        return;
      case "command":
        this.onCommand(envelope.command);
        return;
      default:
        return;
    }
  }

  instances() {
    return [...this.apps].map(([app, { release, color, port }]) => ({ app, color, release, port, state: "healthy", pid: 4242, live: true, rssBytes: 40 * 2 ** 20 }));
  }

  heartbeat() {
    counters.heartbeats++;
    this.send({ heartbeat: { resources: resources(), instances: this.instances() } });
  }

  /** What a real agent acts on: the inner command under this session's MAC or the coordinator's signature, for this host and session, its sequence above the last one. */
  open(outer) {
    if (!outer.signed?.length || !this.session) return undefined;
    const keyed = outer.mac?.length > 0;
    if (keyed) {
      const key = this.session.commandKey;
      if (!key || outer.mac.length !== 32 || !timingSafeEqual(createHmac("sha256", key).update(outer.signed).digest(), outer.mac)) return undefined;
    } else if (!verify(null, outer.signed, this.coordinatorKey, outer.signature)) {
      return undefined;
    }
    const inner = openSignedCommand(outer);
    if (inner.hostId !== this.session.hostId || !Buffer.from(inner.sessionNonce).equals(Buffer.from(this.nonce))) return undefined;
    const sequence = Number(inner.sequence);
    if (keyed) {
      if (!(sequence > this.session.lastMacSequence)) return undefined;
      this.session.lastMacSequence = sequence;
      counters.macCommands++;
    } else {
      if (!(sequence > this.lastSequence)) return undefined;
      this.lastSequence = sequence;
      counters.signedCommands++;
    }
    return inner;
  }

  onCommand(outer) {
    const reply = (result) => this.send({ commandResult: { commandId: outer.commandId, durationMs: 0, ...result } });
    let command;
    try {
      command = this.open(outer);
    } catch {
      command = undefined;
    }
    if (!command) {
      counters.commandsRefused++;
      return reply({ status: Status.REJECTED, errorCode: "ERR_COMMAND_BAD_SIGNATURE", message: "not a valid signed command" });
    }
    if (Number(command.deadlineUnixMs) < Date.now()) return reply({ status: Status.EXPIRED, errorCode: "ERR_COMMAND_EXPIRED", message: "received after its deadline" });
    if (command.operation === "ping") {
      counters.pings++;
      return reply({ status: Status.OK, pong: { payload: command.ping.payload } });
    }
    if (command.operation === "deploy" || command.operation === "rollback") {
      counters.deploys++;
      const app = command.deploy?.app?.name ?? command.rollback.app;
      const before = this.apps.get(app);
      const color = before?.color === "blue" ? "green" : "blue";
      const release = command.deploy?.release ?? before?.previous ?? "unknown";
      const port = color === "blue" ? command.deploy?.app?.bluePort ?? 7001 : command.deploy?.app?.greenPort ?? 7002;
      for (const [step, text] of DEPLOY_STEPS) {
        const message = text.replace("RELEASE", release).replace("COLOR", color);
        this.send({ event: { commandId: command.commandId, atUnixMs: Date.now(), kind: "step", app, color, step, message } });
      }
      this.apps.set(app, { release, color, port, previous: before?.release });
      reply({
        status: Status.OK,
        deployed: { app, release, liveColor: color, previousRelease: before?.release ?? "", switchMs: 0, bootMs: 0, totalMs: 0, unchanged: false, handoverMs: 0 },
      });
      // A real agent heartbeats right after a deploy so the coordinator's view does not wait.
      this.heartbeat();
      return;
    }
    reply({ status: Status.UNSUPPORTED, errorCode: "ERR_UNSUPPORTED_OPERATION", message: "not simulated" });
  }

  stop() {
    this.state = "stopped";
    clearInterval(this.heartbeatTimer);
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.handshakeTimer);
    this.socket?.terminate();
  }
}

/** A fresh X25519 share for one session. */
function newKeyShare() {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return { privateKey, share: Buffer.from(publicKey.export({ format: "jwk" }).x, "base64url") };
}

/** The session's command key, as the agent derives it (agent/src/session/session-key.ts). */
function deriveKey(ours, theirs, nonce, hostId) {
  const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(theirs).toString("base64url") }, format: "jwk" });
  return Buffer.from(hkdfSync("sha256", diffieHellman({ privateKey: ours.privateKey, publicKey: peer }), nonce, commandKeyInfo(hostId), 32));
}

let agents = [];
const keyObjects = new Map();
/** One KeyObject per coordinator key (every session of a process sees the same one). */
function coordinatorKeyObject(raw) {
  if (!raw?.length) return undefined;
  const hex = Buffer.from(raw).toString("hex");
  if (!keyObjects.has(hex)) keyObjects.set(hex, createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" }));
  return keyObjects.get(hex);
}

process.on("message", (message) => {
  if (message.type === "start") {
    const settings = { url: message.url, localAddress: message.localAddress, labels: message.labels, maxBackoffMs: message.maxBackoffMs };
    agents = message.agents.map(({ name, token, legacy }) => new SimAgent(name, token, settings, legacy));
    // Spread the first connects over `rampMs`, as hosts booting around the same time would.
    agents.forEach((agent, i) => setTimeout(() => agent.connect(), Math.floor((i / agents.length) * message.rampMs)));
    process.send({ type: "started", count: agents.length });
  } else if (message.type === "stats") {
    process.send({ type: "stats", id: message.id, counters, memoryRss: process.memoryUsage.rss() });
  } else if (message.type === "reset") {
    for (const key of ["refusals", "upgradeRejects", "connectErrors", "dropsWhileOnline"]) counters[key] = {};
    counters.handshakeTimeouts = 0;
    counters.upgradeTimeouts = 0;
    counters.welcomes = 0;
    counters.lastOnlineAt = 0;
    process.send({ type: "reset", id: message.id });
  } else if (message.type === "stop") {
    for (const agent of agents) agent.stop();
    setTimeout(() => process.exit(0), 100);
  }
});
process.on("disconnect", () => process.exit(0));
