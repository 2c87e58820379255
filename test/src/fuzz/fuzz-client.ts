/**
 * A WebSocket client for the coordinator fuzz: speaks enough of the agent
 * protocol to authenticate, then sends whatever bytes it is given. Unlike the
 * harness's RawAgent it knows its local port (the coordinator logs sessions by
 * remote address, so each close can be matched to its log line) and it never
 * throws on what the coordinator sends — it counts frames it cannot decode.
 */
import { sign } from "node:crypto";
import { once } from "node:events";
import WebSocket from "ws";
import { decodeEnvelope, encodeEnvelope, helloProofBytes, PROTOCOL_VERSION, type Envelope, type EnvelopeInit } from "@cutover/protocol";
import type { TestKey } from "../harness/raw-agent.js";

export interface CloseInfo {
  code: number;
  reason: string;
}

export class FuzzClient {
  readonly received: Envelope[] = [];
  /** Frames from the coordinator that did not decode: the coordinator must never send one. */
  undecodable = 0;
  readonly closed: Promise<CloseInfo>;
  isClosed = false;
  private waiters: { match(e: Envelope): boolean; resolve(e: Envelope | undefined): void }[] = [];

  /** This end's TCP port, known once the upgrade completes. */
  localPort = 0;

  private constructor(readonly socket: WebSocket) {
    socket.once("upgrade", (response) => (this.localPort = response.socket.localPort ?? 0));
    socket.on("message", (data, isBinary) => {
      let envelope: Envelope;
      try {
        if (!isBinary) throw new Error("text frame");
        envelope = decodeEnvelope(data as Buffer);
      } catch {
        this.undecodable++;
        return;
      }
      this.received.push(envelope);
      this.waiters = this.waiters.filter((w) => (w.match(envelope) ? (w.resolve(envelope), false) : true));
    });
    socket.on("error", () => {});
    this.closed = once(socket, "close").then(([code, reason]) => {
      this.isClosed = true;
      for (const w of this.waiters.splice(0)) w.resolve(undefined);
      return { code: code as number, reason: String(reason) };
    });
  }

  static async connect(url: string): Promise<FuzzClient> {
    const socket = new WebSocket(url.replace(/^http/, "ws") + "/v1/agent", { perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
    // Listeners go on before the socket opens: the Challenge can arrive in the same packet as the upgrade.
    const client = new FuzzClient(socket);
    await once(socket, "open");
    return client;
  }

  /** The first received envelope matching `match`, or undefined once the socket closes. */
  next(match: (e: Envelope) => boolean): Promise<Envelope | undefined> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  async challengeNonce(): Promise<Uint8Array | undefined> {
    return (await this.next((e) => e.body === "challenge"))?.challenge?.nonce ?? undefined;
  }

  /** The Hello a real agent would send for this session, signed (optionally presenting another name). */
  async helloFrame(name: string, key: TestKey, token = ""): Promise<Uint8Array | undefined> {
    const nonce = await this.challengeNonce();
    if (!nonce) return undefined;
    const signature = sign(null, helloProofBytes(nonce, name, key.publicKey), key.privateKey);
    return encodeEnvelope({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        name,
        publicKey: key.publicKey,
        signature,
        enrollmentToken: token,
        address: "127.0.0.1",
        agentVersion: "fuzz",
        capabilities: ["ping"],
        resources: { memTotalBytes: 1, memAvailableBytes: 1, disks: [{ path: "/", freeBytes: 1, totalBytes: 1 }] },
      },
    });
  }

  /** Hello, then Welcome or Refusal (undefined if the socket closed first). */
  async handshake(name: string, key: TestKey, token = ""): Promise<Envelope["body"] | undefined> {
    const hello = await this.helloFrame(name, key, token);
    if (!hello) return undefined;
    this.send(hello);
    return (await this.next((e) => e.body === "welcome" || e.body === "refusal"))?.body;
  }

  send(data: Uint8Array | string, binary = true): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(data, { binary });
  }

  sendEnvelope(envelope: EnvelopeInit): void {
    this.send(encodeEnvelope(envelope));
  }

  terminate(): void {
    this.socket.terminate();
  }
}
