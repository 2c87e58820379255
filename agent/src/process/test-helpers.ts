// Shared by the process and health integration tests: a temp state dir per
// test, the example app as a ProcessSpec on a loopback address of its own,
// and a teardown that kills every process group a test started.
// Not part of the module's public face.
import type { ExecutionContext } from "ava";
import { createLogger, type Logger } from "@cutover/log";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, randomLoopback } from "../nginx/test-helpers.js";
import type { WaitHealthyOptions } from "../health/index.js";
import { readCmdline } from "./proc.js";
import type { Color, InstanceIdentity } from "./record.js";
import { processSpec, type ProcessSpec } from "./spec.js";

export { freePort, randomLoopback };

/** examples/app/server.mjs, from agent/dist/process/. */
export const EXAMPLE_APP = fileURLToPath(new URL("../../../examples/app/server.mjs", import.meta.url));

/** A quick gate for tests: checks every 50ms, 2 passes needed. */
export const FAST_GATE: Pick<WaitHealthyOptions, "check" | "intervalMs" | "timeoutMs" | "healthyThreshold" | "deadlineMs"> = {
  check: { kind: "http", path: "/health_check", expectStatus: 200 },
  intervalMs: 50,
  timeoutMs: 1000,
  healthyThreshold: 2,
  deadlineMs: 10_000,
};

export interface AppFixture {
  /** Holds the state dir (records), the log dir and the scratch release dir. */
  root: string;
  stateDir: string;
  logDir: string;
  identity: InstanceIdentity;
  spec: ProcessSpec;
  /** Log lines of the agent-side logger, "message key=value ...". */
  logLines: string[];
  log: Logger;
}

/**
 * The example app as color `color` of app "geoip" with `flags`, on a free port
 * of a fresh loopback address; teardown SIGKILLs every app started with it.
 */
export async function appFixture(t: ExecutionContext, flags: string[] = [], color: Color = "blue", release = "v1"): Promise<AppFixture> {
  const root = mkdtempSync(join(tmpdir(), "cutover-process-"));
  const stateDir = join(root, "state");
  const logDir = join(root, "logs");
  const address = randomLoopback();
  const port = await freePort(address);
  const identity: InstanceIdentity = { app: "geoip", color, release, port, address };
  // These tests are about supervision, not accounts: the app runs as the (root) test runner.
  const spec = processSpec(
    { command: [process.execPath, EXAMPLE_APP, "--port", "${PORT}", "--host", "${ADDRESS}", ...flags], env: {} },
    { ...identity, releaseDir: root },
    { rootApps: "allow" },
  );
  const logLines: string[] = [];
  const log = createLogger("test", { level: "debug", write: (line) => logLines.push(line.slice(line.indexOf(" ") + 1)) });
  t.teardown(() => {
    killFixtureApps(address, port);
    rmSync(root, { recursive: true, force: true });
  });
  return { root, stateDir, logDir, identity, spec, logLines, log };
}

/**
 * SIGKILLs every example app started for this address and port, found by its
 * argv in /proc: that covers restarts and apps whose spawner already exited.
 */
function killFixtureApps(address: string, port: number): void {
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const argv = readCmdline(pid);
    if (!argv?.includes(EXAMPLE_APP) || argv[argv.indexOf("--port") + 1] !== String(port) || argv[argv.indexOf("--host") + 1] !== address) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Gone meanwhile.
    }
  }
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One GET on a fresh connection. */
export function get(address: string, port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * Resolves once the file's content matches: for an app's own log line, which
 * no event announces. Polls every 20ms; rejects after `timeoutMs`.
 */
export async function logShows(path: string, pattern: RegExp, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      // Not created yet.
    }
    if (pattern.test(text)) return;
    if (performance.now() > deadline) throw new Error(`${path} did not show ${pattern} within ${timeoutMs}ms:\n${text}`);
    await sleep(20);
  }
}
