// Shared by the nginx integration tests: real nginx in a temp state dir, two tiny color
// servers on a loopback address of their own, and a keep-alive client that counts
// what a user would see. Not part of the module's public face.
import type { ExecutionContext } from "ava";
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createManagedRunner, type ManagedNginx, type ManagedRunnerOptions } from "./managed.js";
import { PROBE_TOKEN_HEADER } from "./probe-token.js";
import { UPSTREAM_HEADER } from "./render.js";
import { childPids, pollUntil, processTitle } from "./proc.js";
import type { SiteConfig, SwitchMode } from "./site.js";

import { freePort, randomLoopback, startLoad as startSharedLoad, type LoadReport, type LoadRun } from "@cutover/testkit";
export { randomLoopback, freePort, median } from "@cutover/testkit";

export interface ColorServer {
  color: string;
  port: number;
  server: Server;
  /** TCP connections nginx opened to this color. */
  connections: number;
  /** Every request it answered: what nginx sent it. */
  /** Every request it got; `probe`: whether it carried the agent's probe header (nginx must never pass it on). */
  requests: { method: string; url: string; host: string | undefined; contentLength: string | undefined; probe: boolean }[];
}

/** An app instance: answers every request with its color (body and X-Color header). */
export function startColor(color: string, address: string): Promise<ColorServer> {
  return new Promise((resolve, reject) => {
    const server = createServer((req, res) => {
      state.requests.push({
        method: req.method ?? "",
        url: req.url ?? "",
        host: req.headers.host,
        contentLength: req.headers["content-length"],
        probe: req.headers[PROBE_TOKEN_HEADER.toLowerCase()] !== undefined,
      });
      req.resume();
      res.setHeader("x-color", color);
      res.end(color);
    });
    const state: ColorServer = { color, port: 0, server, connections: 0, requests: [] };
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
  // The colors' ports first: a port picked alongside could be the next one the kernel hands a color.
  const [blue, green] = await Promise.all([startColor("blue", address), startColor("green", address)]);
  const listenPort = await freePort(address);
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

/** One GET through the proxy on a fresh connection with `headers`: the body and every answer header (lower-cased names). */
export function getWithHeaders(address: string, port: number, headers: Record<string, string> = {}, path = "/"): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, agent: false, headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * One GET through the proxy on a fresh connection: what a new user sees, or with the
 * runner's `probeToken`, what the agent's probes see (the upstream that served).
 */
export async function get(address: string, port: number, path = "/", probeToken?: string): Promise<ProxyAnswer> {
  const answer = await getWithHeaders(address, port, probeToken === undefined ? {} : { [PROBE_TOKEN_HEADER]: probeToken }, path);
  return { status: answer.status, body: answer.body, upstream: answer.headers[UPSTREAM_HEADER.toLowerCase()] as string | undefined };
}

export type { LoadReport };

export interface LoadOptions {
  concurrency: number;
  /** Requests started per second (bounded: the load must not starve nginx and the agent under test). */
  ratePerSec: number;
  /** Retry an idempotent GET once when a reused keep-alive connection was closed under it (RFC 9112 §9.3.1). */
  retry: boolean;
  /** Upper bound on requests, so a hung test still ends. */
  maxRequests: number;
}

/** The shared load client, counting answers by the color server that gave them. */
export function startLoad(address: string, port: number, options: LoadOptions): LoadRun {
  return startSharedLoad({
    address,
    port,
    ...options,
    classify: (status, _headers, body) => (status === 200 && (body === "blue" || body === "green") ? body : null),
  });
}

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
