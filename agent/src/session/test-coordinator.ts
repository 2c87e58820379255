/**
 * Coordinators for the link's tests: each a real WebSocket server on a loopback address of its
 * own, which plays the coordinator's side of the handshake as the test says (a Welcome signed
 * with the fleet's key under an epoch, or a Refusal), written from the protocol's description.
 */
import { once } from "node:events";
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, MAX_FRAME_BYTES, signedCommandBytes, welcomeProofBytes, type cutover, type Envelope, type EnvelopeInit } from "@cutover/protocol";
import { randomLoopback } from "@cutover/testkit";
import { coordinatorKeyId } from "./command-verifier.js";

/** The signing key every coordinator of one fleet shares. */
export class FleetKey {
  readonly publicKey: Uint8Array;
  readonly keyId: string;
  private readonly privateKey: KeyObject;
  private sequence = 0;

  constructor() {
    const { privateKey } = generateKeyPairSync("ed25519");
    this.privateKey = privateKey;
    this.publicKey = Buffer.from((privateKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
    this.keyId = coordinatorKeyId(this.publicKey);
  }

  sign(bytes: Uint8Array): Uint8Array {
    return sign(null, bytes, this.privateKey);
  }

  /** A ping signed for `session` with the next sequence, as a coordinator sends it to an agent without "commands.mac". */
  ping(session: TestSession, commandId: string): EnvelopeInit {
    const deadlineUnixMs = Date.now() + 60_000;
    const signed = signedCommandBytes({ commandId, deadlineUnixMs, sequence: ++this.sequence, hostId: session.hostId, sessionNonce: session.nonce, ping: { payload: commandId } });
    return { command: { commandId, deadlineUnixMs, signed, signature: this.sign(signed) } };
  }
}

/** What a coordinator answers a Hello with. */
export type Answer =
  | { welcome: { epoch: number; members?: string[]; signedBy?: FleetKey } }
  | { refusal: cutover.v1.Refusal.$Properties };

/** One agent connection, from the coordinator's side. */
export class TestSession {
  readonly nonce = randomBytes(32);
  readonly hostId = "host-1";
  hello: cutover.v1.Hello | undefined;
  isClosed = false;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly socket: WebSocket) {
    this.closed = once(socket, "close").then(([code, reason]) => {
      this.isClosed = true;
      return { code: code as number, reason: String(reason) };
    });
    socket.on("error", () => {});
  }

  send(envelope: EnvelopeInit): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(encodeEnvelope(envelope), { binary: true });
  }
}

export class TestCoordinator {
  /** How the next Hello is answered; the test changes it between sessions. */
  answer: Answer;
  readonly sessions: TestSession[] = [];
  private waiters: { index: number; resolve(session: TestSession): void }[] = [];

  private constructor(private readonly wss: WebSocketServer, private readonly key: FleetKey, answer: Answer) {
    this.answer = answer;
    wss.on("connection", (socket) => {
      const session = new TestSession(socket);
      this.sessions.push(session);
      socket.on("message", (data) => this.onFrame(session, decodeEnvelope(data as Buffer)));
      session.send({ challenge: { nonce: session.nonce, protocolVersion: 1 } });
    });
  }

  static async start(key: FleetKey, answer: Answer): Promise<TestCoordinator> {
    const wss = new WebSocketServer({ host: randomLoopback(), port: 0, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false });
    await once(wss, "listening");
    return new TestCoordinator(wss, key, answer);
  }

  /** Its agent endpoint, as members and leader_url name it. */
  get url(): string {
    const { address, port } = this.wss.address() as AddressInfo;
    return `ws://${address}:${port}/v1/agent`;
  }

  /** Resolves with session `index` (0: the first connection) once its Hello has been answered. */
  answered(index: number): Promise<TestSession> {
    const session = this.sessions[index];
    if (session?.hello) return Promise.resolve(session);
    return new Promise((resolve) => this.waiters.push({ index, resolve }));
  }

  private onFrame(session: TestSession, envelope: Envelope): void {
    if (envelope.body !== "hello" || session.hello) return;
    const hello = envelope.hello as cutover.v1.Hello;
    session.hello = hello;
    if ("refusal" in this.answer) {
      session.send({ refusal: this.answer.refusal });
      session.socket.close(4401, String(this.answer.refusal.code));
    } else {
      const { epoch, members = [], signedBy = this.key } = this.answer.welcome;
      const proof = welcomeProofBytes({ nonce: session.nonce, hostId: session.hostId, agentPublicKey: hello.publicKey, epoch, members });
      session.send({ welcome: { hostId: session.hostId, heartbeatIntervalMs: 60_000, protocolVersion: 1, coordinatorPublicKey: signedBy.publicKey, signature: signedBy.sign(proof), epoch, members } });
    }
    const index = this.sessions.indexOf(session);
    this.waiters = this.waiters.filter((w) => (w.index === index ? (w.resolve(session), false) : true));
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
