import { Agent, request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";

/** What a load run saw, counted the way a user would. */
export interface LoadReport {
  requests: number;
  /** Requests that failed for the user (after the one allowed retry, when retrying). */
  failed: number;
  /** Socket errors seen at all (ECONNRESET, hang up, refused), retried or not. */
  socketErrors: number;
  retries: number;
  /** Why requests failed (first 50). */
  failures: string[];
  /** Successful answers by the label `classify` gave them (e.g. the app version). */
  answers: Record<string, number>;
  /** Latency of successful requests, ms. */
  latenciesMs: number[];
  durationMs: number;
}

export interface LoadOptions {
  address: string;
  port: number;
  path?: string;
  concurrency: number;
  /**
   * Requests started per second across all loops. Tests give a number, so a load client
   * measures the product instead of racing it for the CPU; benchmarks that mean to
   * saturate a host say "unbounded".
   */
  ratePerSec: number | "unbounded";
  /** Retry an idempotent GET once, on a new connection, when a reused keep-alive connection was closed under it (RFC 9112 §9.3.1). */
  retry: boolean;
  /** Upper bound on requests, so a run always ends. */
  maxRequests: number;
  /** Labels a good answer (e.g. by its X-App-Version header), or returns null when the answer is a failure. */
  classify?: (status: number, headers: IncomingHttpHeaders, body: string) => string | null;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
  /** Request headers every request carries. */
  headers?: OutgoingHttpHeaders;
  /** HTTPS: the name sent as SNI and Host, checked against the certificate signed by `ca` (PEM). */
  tls?: { servername: string; ca: string };
}

const MAX_FAILURES_KEPT = 50;

type Outcome = { ok: true; status: number; headers: IncomingHttpHeaders; body: string } | { ok: false; error: NodeJS.ErrnoException; reused: boolean };

function isRetryable(error: NodeJS.ErrnoException, reused: boolean): boolean {
  return reused && (error.code === "ECONNRESET" || error.message === "socket hang up" || error.code === "EPIPE");
}

const defaultClassify = (status: number) => (status === 200 ? "200" : null);

export interface LoadRun {
  /** Resolves once `count` more requests have completed (or the run ended). */
  completed(count: number): Promise<void>;
  stop(): Promise<LoadReport>;
}

/**
 * Keep-alive GET loops against one address until `stop()` (or maxRequests).
 * Socket reuse is tracked by the client itself: node's Agent does not set
 * `reusedSocket` when it hands a freed socket to a queued request.
 */
export function startLoad(options: LoadOptions): LoadRun {
  const tls = options.tls;
  const agent = tls
    ? new TlsAgent({ keepAlive: true, maxSockets: options.concurrency, ca: tls.ca, servername: tls.servername })
    : new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const send = tls ? tlsRequest : request;
  const headers = tls ? { host: tls.servername, ...options.headers } : options.headers;
  const classify = options.classify ?? defaultClassify;
  const report: LoadReport = { requests: 0, failed: 0, socketErrors: 0, retries: 0, failures: [], answers: {}, latenciesMs: [], durationMs: 0 };
  const usedSockets = new WeakSet<Socket>();
  const started = performance.now();
  let stopping = false;
  let done = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  const finished = () => {
    done += 1;
    for (const waiter of waiters.filter((w) => done >= w.at)) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };
  const fail = (why: string) => {
    report.failed += 1;
    if (report.failures.length < MAX_FAILURES_KEPT) report.failures.push(why);
  };

  const once = (fresh = false): Promise<Outcome> =>
    new Promise((resolve) => {
      let reused = false;
      const req = send(
        {
          host: options.address,
          port: options.port,
          path: options.path ?? "/",
          headers,
          timeout: options.timeoutMs ?? 10_000,
          ...(tls && { ca: tls.ca, servername: tls.servername }),
          ...(fresh ? { agent: false } : { agent }),
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => (body += chunk));
          res.on("end", () => resolve({ ok: true, status: res.statusCode ?? 0, headers: res.headers, body }));
          res.on("error", (error) => resolve({ ok: false, error, reused }));
        },
      );
      req.on("socket", (socket) => {
        reused = usedSockets.has(socket);
        usedSockets.add(socket);
      });
      req.on("timeout", () => req.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })));
      req.on("error", (error) => resolve({ ok: false, error, reused }));
      req.end();
    });

  // Paced by one shared schedule: request n starts no earlier than started + n / rate.
  const spacingMs = options.ratePerSec === "unbounded" ? 0 : 1000 / options.ratePerSec;
  let nextStartAt = performance.now();
  const paced = async () => {
    if (spacingMs === 0) return;
    const now = performance.now();
    const at = Math.max(now, nextStartAt);
    nextStartAt = at + spacingMs;
    if (at > now) await new Promise((resolve) => setTimeout(resolve, at - now));
  };

  const loop = async () => {
    while (!stopping && report.requests < options.maxRequests) {
      await paced();
      // Another loop may have taken the last request while this one waited for its slot.
      if (stopping || report.requests >= options.maxRequests) break;
      report.requests += 1;
      const begin = performance.now();
      let outcome = await once();
      let history = "";
      if (!outcome.ok) {
        report.socketErrors += 1;
        history = `${outcome.error.code ?? ""} ${outcome.error.message} (${outcome.reused ? "reused" : "new"} connection)`;
        if (options.retry && isRetryable(outcome.error, outcome.reused)) {
          report.retries += 1;
          outcome = await once(true);
          if (!outcome.ok) {
            report.socketErrors += 1;
            history += `, retry: ${outcome.error.code ?? ""} ${outcome.error.message}`;
          }
        }
      }
      if (!outcome.ok) {
        fail(history);
      } else {
        const label = classify(outcome.status, outcome.headers, outcome.body);
        if (label === null) fail(`${outcome.status} ${outcome.body.slice(0, 120)}`);
        else {
          report.answers[label] = (report.answers[label] ?? 0) + 1;
          report.latenciesMs.push(performance.now() - begin);
        }
      }
      finished();
    }
    for (const waiter of waiters.splice(0)) waiter.resolve();
  };
  const loops = Array.from({ length: options.concurrency }, loop);
  return {
    completed(count: number) {
      return new Promise<void>((resolve) => waiters.push({ at: done + count, resolve }));
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      agent.destroy();
      report.durationMs = performance.now() - started;
      return report;
    },
  };
}

/** The value at quantile q (0..1) of a list of numbers. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}
