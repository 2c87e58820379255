import { Agent, request } from "node:http";
import { Agent as TlsAgent, request as tlsRequest } from "node:https";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { NginxError } from "./errors.js";
import { PROBE_TOKEN_HEADER } from "./probe-token.js";
import { UPSTREAM_HEADER } from "./render.js";
import { expectedUpstream, hostPort, probeHostName, type SiteConfig } from "./site.js";

export const DEFAULT_CONFIRM_TIMEOUT_MS = 5_000;
/** Pause between probes while the proxy does not yet answer from the new color. */
export const CONFIRM_RETRY_INTERVAL_MS = 2;
const CONFIRM_REQUEST_TIMEOUT_MS = 2_000;

/**
 * How a probe reaches the proxy. "fresh" (default): a new connection per probe, since after
 * a reload only new workers accept new connections and an old worker's kept one may still
 * answer with the old config. "kept": one kept-alive connection per proxy address, for a
 * live switch, where no worker changes and every worker reads the dict on every request:
 * the probe then waits for no connect and no accept by a worker busy with traffic.
 */
export type ProbeConnection = "fresh" | "kept";

/**
 * The kept connections: one idle socket per proxy address (unref'd while idle, so it never
 * keeps the process alive). One nginx closed (keepalive_timeout, a reload, a restart) is
 * dropped; a probe that failed on it is sent again at once on a new connection.
 */
const keptAgent = new Agent({ keepAlive: true, maxFreeSockets: 1 });
/**
 * The same for HTTPS sites. The probe asks the host's own nginx, by address, which of its
 * upstreams served: what it proves is routing, not the certificate (which nginx -t checked
 * against its key), so the chain is not verified here.
 */
const keptTlsAgent = new TlsAgent({ keepAlive: true, maxFreeSockets: 1, rejectUnauthorized: false });

export interface ConfirmOptions {
  /** Path requested through the proxy, e.g. the app's health path. */
  path?: string;
  connection?: ProbeConnection;
  timeoutMs?: number;
  /** Status the app must answer with; default: anything below 500 (a 502/504 is nginx's, not the app's). */
  expectStatus?: number;
  /** The host's probe token (NginxRunner.probeToken): without it nginx does not say which upstream served. */
  probeToken: string;
}

export interface ConfirmResult {
  attempts: number;
  /** What the last answer said served it (`$upstream_addr`), for http. */
  upstream: string | null;
}

interface Probe {
  status: number | null;
  upstream: string | null;
  error: string | null;
  /** Failed on a kept connection that nginx had closed: try again at once. */
  stale?: boolean;
}

/** `$upstream_addr` lists every peer tried ("a, b : c"); the last one answered. */
export function lastUpstream(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header.join(", ") : header;
  if (!value) return null;
  return value.split(/\s*,\s*|\s+:\s+/).at(-1)?.trim() ?? null;
}

function probeHttp(site: SiteConfig, path: string, connection: ProbeConnection, probeToken: string): Promise<Probe> {
  const tls = site.virtualHost?.tls !== undefined;
  // The site's own name, so nginx picks its server block among those sharing the port (SNI too).
  const host = probeHostName(site);
  const headers = { host, [PROBE_TOKEN_HEADER]: probeToken, ...(connection === "kept" ? {} : { connection: "close" }) };
  const kept = tls ? keptTlsAgent : keptAgent;
  return new Promise((resolve) => {
    const req = (tls ? tlsRequest : request)(
      {
        host: site.listenAddress,
        port: site.listenPort,
        path,
        method: "GET",
        headers,
        agent: connection === "kept" ? kept : false,
        ...(tls && { rejectUnauthorized: false, ...(site.virtualHost?.serverNames.length ? { servername: host } : {}) }),
        timeout: CONFIRM_REQUEST_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.on("end", () =>
          resolve({ status: res.statusCode ?? null, upstream: lastUpstream(res.headers[UPSTREAM_HEADER.toLowerCase()]), error: null }),
        );
        res.on("error", (error) => resolve({ status: null, upstream: null, error: error.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", (error) => resolve({ status: null, upstream: null, error: error.message, stale: req.reusedSocket }));
    req.end();
  });
}

function probeTcp(site: SiteConfig): Promise<Probe> {
  return new Promise((resolve) => {
    const socket = connect({ host: site.listenAddress, port: site.listenPort });
    socket.setTimeout(CONFIRM_REQUEST_TIMEOUT_MS, () => socket.destroy(new Error("connect timed out")));
    socket.once("connect", () => {
      socket.destroy();
      resolve({ status: null, upstream: null, error: null });
    });
    socket.once("error", (error) => resolve({ status: null, upstream: null, error: error.message }));
  });
}

/** What an answer says of a switch to `site`: it proves it when the live color gave it with an acceptable status. */
export function provesSwitch(site: SiteConfig, answer: { status: number | null; upstream: string | null }, expectStatus?: number): boolean {
  const { status } = answer;
  const statusOk = status !== null && (expectStatus === undefined ? status < 500 : status === expectStatus);
  return statusOk && answer.upstream === expectedUpstream(site);
}

/**
 * Asks the proxy, as a user would, until the answer comes from the site's live color.
 * http: GET through listenAddress:listenPort until `X-Cutover-Upstream` names
 * upstreamAddress:livePort with an acceptable status. tcp: nginx cannot tell which
 * peer served, so a successful connect through the listen address is all we check.
 */
export async function confirmSwitch(site: SiteConfig, options: ConfirmOptions): Promise<ConfirmResult> {
  const path = options.path ?? "/";
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  const want = expectedUpstream(site);
  const deadline = performance.now() + timeoutMs;
  let attempts = 0;
  let last: Probe = { status: null, upstream: null, error: "no attempt" };
  for (;;) {
    attempts += 1;
    if (site.protocol === "tcp") {
      last = await probeTcp(site);
      if (last.error === null) return { attempts, upstream: null };
    } else {
      last = await probeHttp(site, path, options.connection ?? "fresh", options.probeToken);
      if (provesSwitch(site, last, options.expectStatus)) return { attempts, upstream: last.upstream };
    }
    if (performance.now() >= deadline) break;
    if (last.stale) continue;
    await sleep(CONFIRM_RETRY_INTERVAL_MS);
  }
  const seen = last.error ?? `status ${last.status}, ${UPSTREAM_HEADER}: ${last.upstream ?? "(none)"}`;
  throw new NginxError(
    "ERR_NGINX_CONFIRM_TIMEOUT",
    `site ${site.app}: ${hostPort(site.listenAddress, site.listenPort)}${site.protocol === "http" ? path : ""} ` +
      `did not answer from ${want} within ${timeoutMs} ms after ${attempts} attempts (last: ${seen})`,
  );
}
