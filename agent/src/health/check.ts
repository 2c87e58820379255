import { request } from "node:http";
import { connect } from "node:net";
import { performance } from "node:perf_hooks";

/** What "healthy" means for an instance: an HTTP status on a path, or a TCP connect. */
export type HealthCheck = { kind: "http"; path: string; expectStatus: number } | { kind: "tcp" };

/** Where an instance listens. */
export interface HealthTarget {
  address: string;
  port: number;
}

/** One check's outcome; a failure is a value, not an exception, because the gate retries it. */
export type CheckResult =
  | { ok: true; durationMs: number; status?: number }
  | { ok: false; durationMs: number; status?: number; reason: string; timedOut?: true };

const USER_AGENT = "cutover-agent health-check";

/**
 * Runs one check on a fresh connection (no keep-alive: a pooled socket could
 * pass after the listener is gone), bounded by `timeoutMs`. Never rejects.
 */
export function checkOnce(target: HealthTarget, check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  return check.kind === "http" ? checkHttp(target, check.path, check.expectStatus, timeoutMs) : checkTcp(target, timeoutMs);
}

function checkHttp(target: HealthTarget, path: string, expectStatus: number, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  const where = `GET http://${hostPort(target)}${path}`;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: { ok: boolean; status?: number; reason?: string; timedOut?: true }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      const durationMs = performance.now() - started;
      resolve(result.ok ? { ok: true, durationMs, status: result.status } : { ...result, ok: false, durationMs, reason: result.reason! });
    };
    const req = request({
      host: target.address,
      port: target.port,
      path,
      method: "GET",
      agent: false,
      headers: { Connection: "close", "User-Agent": USER_AGENT },
    });
    const timer = setTimeout(() => finish({ ok: false, reason: `${where}: no answer within ${Math.round(timeoutMs)}ms`, timedOut: true }), timeoutMs);
    req.on("error", (error) => finish({ ok: false, reason: `${where}: ${error.message}` }));
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      // Read the body to its end so the app sees an orderly close, not a reset.
      res.resume();
      res.on("error", () => {});
      res.on("end", () =>
        finish(status === expectStatus ? { ok: true, status } : { ok: false, status, reason: `${where} answered ${status}, expected ${expectStatus}` }),
      );
    });
    req.end();
  });
}

function checkTcp(target: HealthTarget, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  const where = `TCP connect ${hostPort(target)}`;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (reason?: string, timedOut?: true) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const durationMs = performance.now() - started;
      resolve(reason === undefined ? { ok: true, durationMs } : { ok: false, durationMs, reason, ...(timedOut && { timedOut }) });
    };
    const socket = connect({ host: target.address, port: target.port });
    const timer = setTimeout(() => finish(`${where}: not connected within ${Math.round(timeoutMs)}ms`, true), timeoutMs);
    socket.on("connect", () => finish());
    socket.on("error", (error) => finish(`${where}: ${error.message}`));
  });
}

function hostPort(target: HealthTarget): string {
  return target.address.includes(":") ? `[${target.address}]:${target.port}` : `${target.address}:${target.port}`;
}
