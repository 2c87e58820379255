import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@cutover/log";
import { startCoordinator, type Coordinator } from "@cutover/coordinator";
import { readAdminToken } from "./processes.js";

export interface InProcessCoordinator {
  coordinator: Coordinator;
  adminToken: string;
  /** Every log line the coordinator wrote. */
  logs: string[];
  /** Resolves with the first log line (from index `from` on) matching `pattern`. */
  waitForLog(pattern: RegExp, from?: number): Promise<string>;
  api(method: string, path: string, options?: { token?: string | null; body?: unknown }): Promise<{ status: number; body: any }>;
}

/** A coordinator in the test's own process, for protocol-level tests that need its logs and store. */
export async function inProcessCoordinator(
  t: { teardown(fn: () => void | Promise<void>): void },
  fleet: Parameters<typeof startCoordinator>[0]["fleet"] = {},
): Promise<InProcessCoordinator> {
  const dataDir = mkdtempSync(join(tmpdir(), "cutover-inproc-"));
  const logs: string[] = [];
  let watchers: { pattern: RegExp; resolve(line: string): void }[] = [];
  const log = createLogger("coordinator", {
    level: "debug",
    write: (line) => {
      logs.push(line);
      watchers = watchers.filter((w) => (w.pattern.test(line) ? (w.resolve(line), false) : true));
    },
  });
  const coordinator = await startCoordinator({ dataDir, host: "127.0.0.1", port: 0, fleet, log });
  t.teardown(async () => {
    await coordinator.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const adminToken = readAdminToken(dataDir);
  return {
    coordinator,
    adminToken,
    logs,
    waitForLog: (pattern, from = 0) => {
      const seen = logs.slice(from).find((line) => pattern.test(line));
      return seen ? Promise.resolve(seen) : new Promise((resolve) => watchers.push({ pattern, resolve }));
    },
    api: async (method, path, options = {}) => {
      const token = options.token === undefined ? adminToken : options.token;
      const response = await fetch(coordinator.url + path, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
      return { status: response.status, body: await response.json() };
    },
  };
}
