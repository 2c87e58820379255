/**
 * A tiny coordinator for the agent-side fuzz: a loopback WebSocket server that
 * hands each agent connection to the test, which then plays the coordinator's
 * part frame by frame (Challenge, Welcome, then whatever it likes).
 */
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeEnvelope, MAX_FRAME_BYTES, type Envelope, type EnvelopeInit, encodeEnvelope } from "@cutover/protocol";

export class AgentConnection {
  readonly received: Envelope[] = [];
  /** Frames from the agent that did not decode (or were text): the agent must never send one. */
  readonly undecodable: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  isClosed = false;
  private waiters: { match(e: Envelope): boolean; resolve(e: Envelope | undefined): void }[] = [];

  constructor(readonly socket: WebSocket) {
    socket.on("message", (data, isBinary) => {
      let envelope: Envelope;
      try {
        if (!isBinary) throw new Error("text frame");
        envelope = decodeEnvelope(data as Buffer);
      } catch (error) {
        this.undecodable.push((error as Error).message);
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

  /** The first envelope (already received or coming) matching `match`; undefined on close or after `timeoutMs`. */
  next(match: (e: Envelope) => boolean, timeoutMs: number): Promise<Envelope | undefined> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.isClosed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter = {
        match,
        resolve: (e: Envelope | undefined) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  send(data: Uint8Array | string, binary = true): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(data, { binary });
  }

  sendEnvelope(envelope: EnvelopeInit): void {
    this.send(encodeEnvelope(envelope));
  }
}

export class FakeCoordinator {
  private readonly wss: WebSocketServer;
  private readonly queue: AgentConnection[] = [];
  private waiting: ((c: AgentConnection) => void) | undefined;
  connections = 0;

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on("connection", (socket) => {
      this.connections++;
      const connection = new AgentConnection(socket);
      if (this.waiting) {
        const resolve = this.waiting;
        this.waiting = undefined;
        resolve(connection);
      } else this.queue.push(connection);
    });
  }

  static async start(): Promise<FakeCoordinator> {
    // Larger than the agent's own limit, so the agent's maxPayload is what an oversized frame meets.
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, maxPayload: 4 * MAX_FRAME_BYTES, perMessageDeflate: false });
    await once(wss, "listening");
    return new FakeCoordinator(wss);
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.wss.address() as AddressInfo).port}/v1/agent`;
  }

  /** The next agent connection, or undefined if none comes within `timeoutMs`. */
  nextConnection(timeoutMs: number): Promise<AgentConnection | undefined> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.waiting = (c) => {
        clearTimeout(timer);
        resolve(c);
      };
    });
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }
}
