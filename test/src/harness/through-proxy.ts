import { request } from "node:http";
import { startLoad, type LoadOptions, type LoadRun } from "@cutover/testkit";

export interface ProxyAnswer {
  status: number;
  version: string | undefined;
  color: string | undefined;
  upstream: string | undefined;
}

/** One GET through a host's proxy on a fresh connection: what a user would see. */
export function getThroughProxy(address: string, port: number, path = "/api/v1/geoip/1.2.3.4"): Promise<ProxyAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          version: res.headers["x-app-version"] as string | undefined,
          color: res.headers["x-app-color"] as string | undefined,
          upstream: res.headers["x-cutover-upstream"] as string | undefined,
        }),
      );
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** Requests per second each proxy gets unless a test asks for more: steady traffic, not a CPU race. */
export const PROXY_LOAD_RATE_PER_SEC = 100;

/**
 * Keep-alive load through every host's proxy at once, answers labelled by app
 * version. Stopped at the test's end whatever happens in it (a failed step must
 * not leave clients running that keep the test process alive).
 */
export function loadThroughProxies(
  t: { teardown(fn: () => Promise<unknown>): void },
  addresses: string[],
  port: number,
  options: { retry: boolean; concurrency?: number; ratePerSec?: number; tls?: LoadOptions["tls"] },
): { runs: LoadRun[]; completed(count: number): Promise<void> } {
  const runs = addresses.map((address) =>
    startLoad({
      address,
      port,
      path: "/api/v1/geoip/1.2.3.4",
      concurrency: options.concurrency ?? 2,
      ratePerSec: options.ratePerSec ?? PROXY_LOAD_RATE_PER_SEC,
      retry: options.retry,
      maxRequests: 200_000,
      classify: (status, headers) => (status === 200 ? String(headers["x-app-version"]) : null),
      ...(options.tls && { tls: options.tls }),
    }),
  );
  t.teardown(() => Promise.all(runs.map((r) => r.stop())));
  return { runs, completed: (count) => Promise.all(runs.map((r) => r.completed(count))).then(() => {}) };
}
