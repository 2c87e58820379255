// Shared by the nginx integration tests: real nginx in a temp state dir, two tiny color
// servers on a loopback address of their own, and a keep-alive client that counts
// what a user would see. Not part of the module's public face.
import type { ExecutionContext } from "ava";
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent, createServer, request, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createManagedRunner, type ManagedNginx, type ManagedRunnerOptions } from "./managed.js";
import { childPids, pollUntil, processTitle } from "./proc.js";
import type { SiteConfig, SwitchMode } from "./site.js";

/** A loopback address of its own per test (127.0.0.100-250), like one agent per host. */
export function randomLoopback(): string {
  return `127.0.0.${100 + Math.floor(Math.random() * 151)}`;
}

/** A port free on `address` right now: bind 0, read it, close. */
export function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createTcpServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ColorServer {
  color: string;
  port: number;
  server: Server;
  /** TCP connections nginx opened to this color. */
  connections: number;
}

/** An app instance: answers every request with its color (body and X-Color header). */
export function startColor(color: string, address: string): Promise<ColorServer> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      req.resume();
      res.setHeader("x-color", color);
      res.end(color);
    });
    const state: ColorServer = { color, port: 0, server, connections: 0 };
    server.on("connection", () => (state.connections += 1));
    server.once("error", reject);
    server.listen(0, address, () => {
      state.port = (server.address() as AddressInfo).port;
      resolve(state);
    });
  });
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

export interface Fixture {
  runner: ManagedNginx;
  stateDir: string;
  address: string;
  listenPort: number;
  blue: ColorServer;
  green: ColorServer;
  site(color: "blue" | "green", switchMode: SwitchMode, extra?: Partial<SiteConfig>): SiteConfig;
}

/** Managed nginx started in a fresh temp state dir, with blue and green; all cleaned up in teardown. */
export async function managedFixture(
  t: ExecutionContext,
  app = "demo",
  options: Partial<ManagedRunnerOptions> = {},
): Promise<Fixture> {
  const stateDir = mkdtempSync(join(tmpdir(), "cutover-nginx-"));
  const address = randomLoopback();
  const [blue, green, listenPort] = await Promise.all([startColor("blue", address), startColor("green", address), freePort(address)]);
  const runner = await createManagedRunner({ stateDir, ...options });
  t.teardown(async () => {
    await runner.stop({ graceful: false }).catch(() => undefined);
    await Promise.all([closeServer(blue.server), closeServer(green.server)]);
    rmSync(stateDir, { recursive: true, force: true });
  });
  await runner.start();
  return {
    runner,
    stateDir,
    address,
    listenPort,
    blue,
    green,
    site: (color, switchMode, extra = {}) => ({
      app,
      protocol: "http",
      listenAddress: address,
      listenPort,
      upstreamAddress: address,
      livePort: color === "blue" ? blue.port : green.port,
      switchMode,
      ...extra,
    }),
  };
}

export interface ProxyAnswer {
  status: number;
  body: string;
  upstream: string | undefined;
}

/** One GET through the proxy on a fresh connection: what a new user sees. */
export function get(address: string, port: number, path = "/"): Promise<ProxyAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body, upstream: res.headers["x-cutover-upstream"] as string | undefined }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

export interface LoadReport {
  requests: number;
  /** Requests that failed for the user (after the one allowed retry, when retrying). */
  failed: number;
  /** Socket errors seen at all (ECONNRESET, hang up), retried or not. */
  socketErrors: number;
  retries: number;
  /** Answers that were not 200 with a color body. */
  badAnswers: string[];
  colors: Record<string, number>;
}

export interface LoadOptions {
  concurrency: number;
  /** Retry an idempotent GET once when a reused keep-alive connection was closed under it (RFC 9112 §9.3.1). */
  retry: boolean;
  /** Upper bound on requests, so a hung test still ends. */
  maxRequests: number;
}

function isRetryable(error: NodeJS.ErrnoException, reused: boolean): boolean {
  return reused && (error.code === "ECONNRESET" || error.message === "socket hang up" || error.code === "EPIPE");
}

/**
 * A keep-alive client loop running until `stop()` resolves (or maxRequests), counting
 * every request's outcome the way a user would.
 */
export function startLoad(
  address: string,
  port: number,
  options: LoadOptions,
): { stop(): Promise<LoadReport>; completed(count: number): Promise<void> } {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const report: LoadReport = { requests: 0, failed: 0, socketErrors: 0, retries: 0, badAnswers: [], colors: {} };
  const usedSockets = new WeakSet<Socket>();
  let stopping = false;
  let done = 0;
  const waiters: Array<{ at: number; resolve: () => void }> = [];
  const finished = () => {
    done += 1;
    for (const waiter of waiters.filter((w) => done >= w.at)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };

  const once = (fresh = false): Promise<{ ok: true; status: number; body: string } | { ok: false; error: NodeJS.ErrnoException; reused: boolean }> =>
    new Promise((resolve) => {
      // A retry goes on a new connection: another idle one may be closing just the same.
      const req = request({ host: address, port, path: "/", ...(fresh ? { agent: false } : { agent }) }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => resolve({ ok: true, status: res.statusCode ?? 0, body }));
        res.on("error", (error) => resolve({ ok: false, error, reused }));
      });
      // Not req.reusedSocket: the agent hands a freed socket to a queued request without setting it.
      let reused = false;
      req.on("socket", (socket) => {
        reused = usedSockets.has(socket);
        usedSockets.add(socket);
      });
      req.on("error", (error) => resolve({ ok: false, error, reused }));
      req.end();
    });

  const loop = async () => {
    while (!stopping && report.requests < options.maxRequests) {
      report.requests += 1;
      let outcome = await once();
      let history = "";
      if (!outcome.ok) {
        report.socketErrors += 1;
        history = `${outcome.error.code ?? ""} ${outcome.error.message} (${outcome.reused ? "reused" : "new"} connection)`;
        if (options.retry && isRetryable(outcome.error, outcome.reused)) {
          report.retries += 1;
          outcome = await once(true);
          if (!outcome.ok) report.socketErrors += 1;
          history += outcome.ok ? "" : `, retry: ${outcome.error.code ?? ""} ${outcome.error.message}`;
        }
      }
      if (!outcome.ok) {
        report.failed += 1;
        report.badAnswers.push(history);
      } else if (outcome.status !== 200 || (outcome.body !== "blue" && outcome.body !== "green")) {
        report.failed += 1;
        report.badAnswers.push(`${outcome.status} ${outcome.body.slice(0, 80)}`);
      } else {
        report.colors[outcome.body] = (report.colors[outcome.body] ?? 0) + 1;
      }
      finished();
    }
    for (const waiter of waiters.splice(0)) waiter.resolve();
  };
  const loops = Array.from({ length: options.concurrency }, loop);
  return {
    /** Resolves once `count` more requests have completed (or the loop ended). */
    completed(count: number) {
      return new Promise<void>((resolve) => waiters.push({ at: done + count, resolve }));
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      agent.destroy();
      return report;
    },
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/**
 * Waits until no worker of the previous config is left. nginx's master sleeps 100 ms
 * after each reload before retiring old workers and handles the next SIGHUP only then,
 * so back-to-back reloads would measure nginx's pause, not the agent. In a real deploy
 * switches are seconds apart (health gate, drain). /proc has no events: polled.
 */
export async function workersSettled(runner: ManagedNginx, workers: number): Promise<void> {
  const pid = runner.masterPid();
  if (pid === null) throw new Error("nginx is not running");
  const settled = await pollUntil(
    () => {
      const children = childPids(pid);
      const retiring = children.some((child) => processTitle(child)?.includes("shutting down") ?? false);
      return !retiring && children.length === workers ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 5 },
  );
  if (!settled) throw new Error("old nginx workers still running after 10 s");
}

/** Load and colors in a child process (see load-child.ts); the handle mirrors startLoad's. */
export interface LoadChild {
  blue: number;
  green: number;
  start(port: number, options: LoadOptions): void;
  completed(count: number): Promise<void>;
  stop(): Promise<LoadReport>;
}

export async function startLoadChild(t: ExecutionContext, address: string): Promise<LoadChild> {
  const child: ChildProcess = fork(new URL("./load-child.js", import.meta.url), [address], { stdio: "inherit" });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
  });
  const waiting = new Map<number, () => void>();
  let reported: ((report: LoadReport) => void) | undefined;
  let nextId = 0;
  const ready = new Promise<{ blue: number; green: number }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`load child exited with ${code}`)));
    child.on("message", (message: { type: string; id?: number; blue?: number; green?: number; report?: LoadReport }) => {
      if (message.type === "ready") resolve({ blue: message.blue!, green: message.green! });
      if (message.type === "completed") waiting.get(message.id!)?.();
      if (message.type === "report") reported?.(message.report!);
    });
  });
  const ports = await ready;
  return {
    ...ports,
    start(port, options) {
      child.send({ type: "load", port, options });
    },
    completed(count) {
      const id = nextId++;
      return new Promise((resolve) => {
        waiting.set(id, resolve);
        child.send({ type: "completed", id, count });
      });
    },
    stop() {
      return new Promise((resolve) => {
        reported = resolve;
        child.send({ type: "stop" });
      });
    },
  };
}
