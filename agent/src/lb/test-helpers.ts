// Shared by the LB integration tests: real nginx (managed mode) in a temp state dir, and
// tiny "app hosts", each a node:http server on a loopback address of its own that answers
// with its name. Not part of the module's public face.
import type { ExecutionContext } from "ava";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createManagedRunner, type ManagedNginx, type ManagedRunnerOptions } from "../nginx/index.js";
import { freePort, randomLoopback } from "@cutover/testkit";
import { backendKey, type LbBackend, type LbSiteConfig } from "./config.js";
import { PROBE_TOKEN_HEADER } from "../nginx/probe-token.js";
import { probeLb, type LbAnswer } from "./confirm.js";

export { freePort, randomLoopback };

/** Long enough for a request the test holds in a backend on a loaded machine. */
const TEST_REQUEST_TIMEOUT_MS = 60_000;

/**
 * An app host's proxy as the LB sees it: answers every request with its name. A request to
 * `/hold...` is answered only when the test calls `release()`: a request provably in
 * flight for as long as the test needs, with no timer.
 */
export interface TestBackend {
  name: string;
  address: string;
  port: number;
  server: Server;
  /** Requests that arrived (any path). */
  requests: number;
  /** Whether any request arrived with the agent's probe header (the LB must never pass it on). */
  sawProbeToken: boolean;
  /** "held" (url) when a /hold request arrives, "released" (url) when its answer is sent. */
  events: EventEmitter;
  /** Answers every held request. */
  release(): void;
  /** `address:port`, as X-Cutover-Backend names it. */
  key: string;
}

export function startBackend(name: string, address = randomLoopback()): Promise<TestBackend> {
  return new Promise((resolve, reject) => {
    const events = new EventEmitter();
    const held: (() => void)[] = [];
    const state = { name, address, port: 0, requests: 0, sawProbeToken: false, events, key: "" } as TestBackend;
    state.release = () => {
      for (const answer of held.splice(0)) answer();
    };
    const server = createServer((req, res) => {
      state.requests += 1;
      if (req.headers[PROBE_TOKEN_HEADER.toLowerCase()] !== undefined) state.sawProbeToken = true;
      req.resume();
      const answer = () => {
        res.setHeader("x-backend", name);
        res.end(name);
      };
      if (req.url?.startsWith("/hold")) {
        held.push(() => {
          answer();
          events.emit("released", req.url);
        });
        events.emit("held", req.url);
      } else {
        answer();
      }
    });
    state.server = server;
    server.once("error", reject);
    server.listen(0, address, () => {
      state.port = (server.address() as AddressInfo).port;
      state.key = backendKey({ address, port: state.port });
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

export interface LbFixture {
  runner: ManagedNginx;
  stateDir: string;
  /** The LB's listen address and port. */
  address: string;
  listenPort: number;
  backends: TestBackend[];
  backend(name: string): TestBackend;
  /** The backend entry of a test backend: up, weight 1, stable, unless overridden. */
  entry(name: string, extra?: Partial<LbBackend>): LbBackend;
  /** A site over every test backend (up, weight 1, stable), with overrides. */
  site(switchMode: LbSiteConfig["switchMode"], extra?: Partial<LbSiteConfig>): LbSiteConfig;
  /** One GET through the LB on a fresh connection, as a new user who is also the agent's probe: told the backend and revision. */
  get(path?: string, headers?: Record<string, string>): Promise<LbAnswer>;
  /** The same as an ordinary user, without the host's probe token: told neither. */
  getAsUser(path?: string, headers?: Record<string, string>): Promise<LbAnswer>;
  /** The name of the backend that served an answer (null when none did). */
  servedBy(answer: LbAnswer): string | null;
}

export interface LbFixtureOptions {
  app?: string;
  backends?: string[];
  runner?: Partial<ManagedRunnerOptions>;
}

/** Managed nginx in a fresh temp state dir plus the named backends; all stopped and removed in teardown. */
export async function lbFixture(t: ExecutionContext, options: LbFixtureOptions = {}): Promise<LbFixture> {
  const app = options.app ?? "demo";
  const names = options.backends ?? ["a", "b", "c"];
  const stateDir = mkdtempSync(join(tmpdir(), "cutover-lb-"));
  const address = randomLoopback();
  // The backends' ports first: a port picked alongside could be the next one the kernel hands a backend.
  const backends = await Promise.all(names.map((name) => startBackend(name)));
  const listenPort = await freePort(address);
  const runner = await createManagedRunner({ stateDir, ...options.runner });
  t.teardown(async () => {
    await runner.stop({ graceful: false }).catch(() => undefined);
    backends.forEach((b) => b.release());
    await Promise.all(backends.map((b) => closeServer(b.server)));
    rmSync(stateDir, { recursive: true, force: true });
  });
  await runner.start();
  const backend = (name: string) => {
    const found = backends.find((b) => b.name === name);
    if (found === undefined) throw new Error(`no test backend ${name}`);
    return found;
  };
  const entry = (name: string, extra: Partial<LbBackend> = {}): LbBackend => {
    const b = backend(name);
    return { host: name, address: b.address, port: b.port, weight: 1, state: "up", group: "stable", ...extra };
  };
  return {
    runner,
    stateDir,
    address,
    listenPort,
    backends,
    backend,
    entry,
    site: (switchMode, extra = {}) => ({
      app,
      listenAddress: address,
      listenPort,
      switchMode,
      backends: names.map((name) => entry(name)),
      ...extra,
    }),
    get: (path = "/", headers = {}) => probeLb(address, listenPort, path, { [PROBE_TOKEN_HEADER]: runner.probeToken, ...headers }, TEST_REQUEST_TIMEOUT_MS),
    getAsUser: (path = "/", headers = {}) => probeLb(address, listenPort, path, headers, TEST_REQUEST_TIMEOUT_MS),
    servedBy: (answer) => backends.find((b) => b.key === answer.backend)?.name ?? null,
  };
}

/** The value of a cookie set by a Set-Cookie list (null when none). */
export function cookieValue(setCookie: readonly string[], name: string): string | null {
  for (const line of setCookie) {
    const match = new RegExp(`^${name}=([^;]*)`).exec(line);
    if (match) return match[1]!;
  }
  return null;
}
