import { request, type OutgoingHttpHeaders } from "node:http";
import { request as tlsRequest } from "node:https";
import { probeHostName } from "../nginx/site.js";
import { setTimeout as sleep } from "node:timers/promises";
import { backendKey, lbPools, lbRevision, pinnedTargets, type LbGroup, type LbSiteConfig } from "./config.js";
import { LbError } from "./errors.js";
import { PROBE_TOKEN_HEADER } from "../nginx/probe-token.js";
import { LB_BACKEND_HEADER, LB_REVISION_HEADER } from "./headers.js";

export const DEFAULT_LB_CONFIRM_TIMEOUT_MS = 5_000;
/** Pause between probes while the LB does not yet answer as the new config would. */
export const LB_CONFIRM_RETRY_INTERVAL_MS = 2;
const PROBE_TIMEOUT_MS = 2_000;

export interface LbConfirmOptions {
  /** Path requested through the LB, e.g. the app's health path. Default "/". */
  path?: string;
  timeoutMs?: number;
  /** Status the app must answer with; default: anything below 500 (a 502/504 is nginx's, not the app's). */
  expectStatus?: number;
  /** The host's probe token (NginxRunner.probeToken): without it the LB names no backend and no revision. */
  probeToken: string;
}

/** One answer through the LB, as a user (or the confirm step) sees it. */
export interface LbAnswer {
  status: number | null;
  body: string;
  /** X-Cutover-Backend: the `address:port` that served. */
  backend: string | null;
  /** X-Cutover-Lb-Revision: which config routed the request. */
  revision: string | null;
  setCookie: string[];
  error: string | null;
}

/** One GET through the LB on a fresh connection (a new connection is what lands on new workers after a reload). */
export function probeLb(
  address: string,
  port: number,
  path = "/",
  headers: OutgoingHttpHeaders = {},
  timeoutMs = PROBE_TIMEOUT_MS,
  /** An HTTPS site: the name to ask for (SNI), if it has names. The chain is not verified: the probe proves routing, nginx -t checked the files. */
  tls?: { servername: string | undefined },
): Promise<LbAnswer> {
  return new Promise((resolve) => {
    const failed = (error: Error) => resolve({ status: null, body: "", backend: null, revision: null, setCookie: [], error: error.message });
    const options = { host: address, port, path, method: "GET", agent: false as const, headers: { connection: "close", ...headers }, timeout: timeoutMs };
    const req = (tls ? tlsRequest : request)(
      tls ? { ...options, rejectUnauthorized: false, ...(tls.servername !== undefined && { servername: tls.servername }) } : options,
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          const one = (name: string) => {
            const value = res.headers[name.toLowerCase()];
            return typeof value === "string" ? value : null;
          };
          resolve({
            status: res.statusCode ?? null,
            body,
            backend: one(LB_BACKEND_HEADER),
            revision: one(LB_REVISION_HEADER),
            setCookie: res.headers["set-cookie"] ?? [],
            error: null,
          });
        });
        res.on("error", failed);
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", failed);
    req.end();
  });
}

/** The sticky group a Set-Cookie list assigns, or null. */
export function stickyGroup(setCookie: readonly string[], cookie: string): LbGroup | null {
  for (const line of setCookie) {
    const match = new RegExp(`^${cookie}=(canary|stable);`).exec(line);
    if (match) return match[1] as LbGroup;
  }
  return null;
}

export interface LbConfirmResult {
  attempts: number;
  /** The backend that answered the plain (new user) probe. */
  backend: string | null;
}

interface Check {
  name: string;
  headers: OutgoingHttpHeaders;
  /** Null when the answer is what the config says; else why not. */
  verdict(answer: LbAnswer): string | null;
}

/**
 * Asks the LB, as users would, until it answers as `config` says: a new user's request
 * reaches a backend that takes new requests, under this config's revision (and, with a
 * canary, the sticky cookie names the group of the backend that served); a pinned request
 * reaches a canary backend (or the stable group when no canary backend takes requests).
 */
export async function confirmLbSite(config: LbSiteConfig, options: LbConfirmOptions): Promise<LbConfirmResult> {
  const path = options.path ?? "/";
  const timeoutMs = options.timeoutMs ?? DEFAULT_LB_CONFIRM_TIMEOUT_MS;
  const revision = lbRevision(config);
  const pools = lbPools(config);
  const keys = (backends: typeof pools.all) => new Set(backends.map(backendKey));
  const up = keys(pools.all);
  const byGroup = { stable: keys(pools.stable.length > 0 ? pools.stable : pools.canary), canary: keys(pinnedTargets(config)) };
  const base = (answer: LbAnswer, allowed: Set<string>): string | null => {
    if (answer.error !== null) return answer.error;
    const statusOk = answer.status !== null && (options.expectStatus === undefined ? answer.status < 500 : answer.status === options.expectStatus);
    if (!statusOk) return `status ${answer.status}`;
    if (answer.revision !== revision) return `${LB_REVISION_HEADER} ${answer.revision ?? "(none)"}, want ${revision}`;
    if (answer.backend === null || !allowed.has(answer.backend)) {
      return `${LB_BACKEND_HEADER} ${answer.backend ?? "(none)"}, want one of ${[...allowed].join(", ")}`;
    }
    return null;
  };
  const canary = config.canary;
  const checks: Check[] = [
    {
      name: "new user",
      headers: {},
      verdict: (answer) => {
        if (canary === undefined) return base(answer, up);
        const group = stickyGroup(answer.setCookie, canary.cookie);
        if (group === null) return `no ${canary.cookie} cookie set for a new user`;
        return base(answer, byGroup[group]);
      },
    },
  ];
  if (canary?.pin !== undefined) {
    const pin = canary.pin;
    checks.push({
      name: `pinned (${pin.kind} ${pin.name})`,
      headers: pin.kind === "header" ? { [pin.name]: pin.value } : { cookie: `${pin.name}=${pin.value}` },
      verdict: (answer) => base(answer, byGroup.canary),
    });
  }
  const listen = backendKey({ address: config.listenAddress, port: config.listenPort });
  // The site's own name, so nginx picks its server block among those sharing the port.
  const hostName = probeHostName(config);
  const tls = config.virtualHost?.tls ? { servername: config.virtualHost.serverNames.length > 0 ? hostName : undefined } : undefined;
  const deadline = performance.now() + timeoutMs;
  let attempts = 0;
  let failures: string[] = [];
  let backend: string | null = null;
  for (;;) {
    attempts += 1;
    const answers = await Promise.all(
      checks.map((check) => probeLb(config.listenAddress, config.listenPort, path, { host: hostName, ...check.headers, [PROBE_TOKEN_HEADER]: options.probeToken }, undefined, tls)),
    );
    failures = [];
    checks.forEach((check, i) => {
      const why = check.verdict(answers[i]!);
      if (why !== null) failures.push(`${check.name}: ${why}`);
    });
    if (failures.length === 0) {
      backend = answers[0]!.backend;
      return { attempts, backend };
    }
    if (performance.now() >= deadline) break;
    await sleep(LB_CONFIRM_RETRY_INTERVAL_MS);
  }
  throw new LbError(
    "ERR_LB_CONFIRM_TIMEOUT",
    `LB site ${config.app}: ${listen}${path} did not answer as the new config says within ${timeoutMs} ms ` +
      `after ${attempts} attempts (last: ${failures.join("; ")}); check that the backends answer on their proxy ports`,
  );
}
