import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { once } from "node:events";
import WebSocket from "ws";
import { decodeEnvelope, encodeEnvelope, helloProofBytes, openSignedCommand, PROTOCOL_VERSION, type Envelope, type cutover } from "@cutover/protocol";

/** An Ed25519 key as an agent holds it. */
export interface TestKey {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}

export function newKey(): TestKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  const { x } = privateKey.export({ format: "jwk" }) as { x: string };
  return { privateKey, publicKey: Buffer.from(x, "base64url") };
}

/**
 * A protocol-level agent for coordinator tests: speaks the real wire protocol
 * but lets a test send exactly what it wants, including what a real agent never would.
 */
export class RawAgent {
  readonly received: Envelope[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { body: string; resolve(e: Envelope): void }[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const envelope = decodeEnvelope(data as Buffer);
      this.received.push(envelope);
      this.waiters = this.waiters.filter((w) => (w.body === envelope.body ? (w.resolve(envelope), false) : true));
    });
    socket.on("error", () => {});
    this.closed = once(socket, "close").then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  }

  /** `autoPong: false` makes a link whose pings go unanswered (a frozen or cut-off host). */
  static async connect(url: string, options: { autoPong?: boolean } = {}): Promise<RawAgent> {
    const socket = new WebSocket(url.replace(/^http/, "ws") + "/v1/agent", { perMessageDeflate: false, maxPayload: 4 * 1024 * 1024, autoPong: options.autoPong ?? true });
    const agent = new RawAgent(socket);
    await once(socket, "open");
    return agent;
  }

  next(body: NonNullable<Envelope["body"]>): Promise<Envelope> {
    const seen = this.received.find((e) => e.body === body);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.waiters.push({ body, resolve });
      void this.closed.then(({ code, reason }) => reject(new Error(`closed (${code} ${reason}) before ${body}`)));
    });
  }

  /** Answers the Challenge with a Hello; `signWith` lets a test sign with a key other than the one presented. */
  async hello(options: {
    name: string;
    key: TestKey;
    token?: string;
    signWith?: TestKey;
    labels?: Record<string, string>;
    address?: string;
    agentVersion?: string;
    /** What the agent says it can do (default: nothing, like an agent from before capabilities). */
    capabilities?: string[];
    /** What it reports of its host (default: 1 byte of memory and disk). */
    resources?: cutover.v1.Resources.$Properties;
    /** An X25519 share for a per-session command key (sent with the capability "commands.mac"). */
    sessionKeyShare?: Uint8Array;
  }): Promise<void> {
    const challenge = (await this.next("challenge")).challenge as cutover.v1.Challenge;
    const signer = options.signWith ?? options.key;
    const signature = sign(null, helloProofBytes(challenge.nonce, options.name, options.key.publicKey), signer.privateKey);
    this.sendEnvelope({
      hello: {
        protocolVersion: PROTOCOL_VERSION,
        name: options.name,
        publicKey: options.key.publicKey,
        signature,
        enrollmentToken: options.token ?? "",
        address: options.address ?? "127.0.0.1",
        agentVersion: options.agentVersion ?? "test",
        labels: options.labels ?? {},
        capabilities: options.capabilities ?? [],
        resources: options.resources ?? { memTotalBytes: 1, memAvailableBytes: 1, disks: [{ path: "/", freeBytes: 1, totalBytes: 1 }] },
        sessionKeyShare: options.sessionKeyShare,
      },
    });
  }

  /** Hello, then the outcome: Welcome or Refusal. */
  async handshake(options: Parameters<RawAgent["hello"]>[0]): Promise<Envelope> {
    await this.hello(options);
    return Promise.race([this.next("welcome"), this.next("refusal")]);
  }

  /** Answers every (signed) Ping from now on with its Pong, like a real agent. */
  answerPings(): void {
    this.socket.on("message", () => {
      const outer = this.received.at(-1)?.command;
      if (!outer) return;
      const command = outer.signed?.length ? openSignedCommand(outer as cutover.v1.Command) : outer;
      if (command.ping) this.sendEnvelope({ commandResult: { commandId: command.commandId, status: 1, pong: { payload: command.ping.payload } } });
    });
  }

  sendEnvelope(envelope: Parameters<typeof encodeEnvelope>[0]): void {
    this.socket.send(encodeEnvelope(envelope), { binary: true });
  }

  sendRaw(data: Uint8Array | string, binary = true): void {
    this.socket.send(data, { binary });
  }

  close(): void {
    this.socket.terminate();
  }
}
