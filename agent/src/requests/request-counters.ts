import { LATENCY_BUCKETS_MS, MAX_REQUEST_COUNTERS, type cutover } from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import { backendKey, readLbSite } from "../lb/index.js";
import { dirname } from "node:path";
import type { NginxRunner, SwitchMode } from "../nginx/index.js";
import { parseCounters, REQUESTS_PATH, type UpstreamCounts } from "../nginx/request-counting.js";
import { unixHttp } from "../nginx/unix-http.js";
import { RequestLogs } from "./request-log.js";

const READ_TIMEOUT_MS = 2_000;

/** The capability of an agent whose nginx sites count their requests (the coordinator's analysis needs it). */
export const COUNTS_REQUESTS = "requests.counted";

export interface RequestCounterOptions {
  nginx: NginxRunner;
  /** How the agent switches its sites: live (the Lua counters) or reload (the request logs). */
  switchMode: SwitchMode;
  /** The color of an app's port on this host (from its definition), or undefined when it is neither. */
  colorOf(app: string, port: number): string | undefined;
  log: Logger;
}

/**
 * The request counters of this host's nginx for a heartbeat
 * (RequestCounters in resources.proto): GET /requests on the control socket,
 * each upstream named by its group — an app site's by the color its port
 * belongs to, an LB site's by the backend host at that address. Live mode
 * counts in Lua; reload mode from the sites' request logs (the managed nginx
 * keeps them; a system nginx in reload mode counts nothing).
 */
export class RequestCounterSource {
  #warnedTooMany = false;
  private readonly logs: RequestLogs | undefined;

  constructor(private readonly options: RequestCounterOptions) {
    const { nginx, switchMode } = options;
    const probe = switchMode === "reload" ? nginx.requestLogPath?.("app", "probe") : undefined;
    this.logs = probe === undefined ? undefined : new RequestLogs(dirname(probe));
  }

  /** Whether this host's sites count their requests: live mode, or reload mode with request logs. */
  get counting(): boolean {
    return this.logs !== undefined || (this.options.switchMode === "live" && this.options.nginx.detectCapabilities().lua);
  }

  async read(): Promise<cutover.v1.RequestCounters.$Properties[]> {
    const { since, upstreams } = await this.counted();
    const backends = await this.backendHosts(upstreams);
    const counters = upstreams.map((u) => toWire(u, this.groupOf(u, backends), since));
    if (counters.length > MAX_REQUEST_COUNTERS && !this.#warnedTooMany) {
      this.#warnedTooMany = true;
      this.options.log.warn("more request counters than a heartbeat carries; the rest are dropped", { counters: counters.length, max: MAX_REQUEST_COUNTERS });
    }
    return counters.slice(0, MAX_REQUEST_COUNTERS);
  }

  /** Live mode: the Lua dict's counters; reload mode: the request logs' (when the runner keeps them). */
  private async counted(): Promise<{ since: number; upstreams: UpstreamCounts[] }> {
    const { nginx, log } = this.options;
    if (this.logs) return { since: this.logs.since, upstreams: await this.logs.read() };
    if (!this.counting || !nginx.isRunning()) return { since: 0, upstreams: [] };
    try {
      const answer = await unixHttp(nginx.controlSocket, "GET", REQUESTS_PATH, "", READ_TIMEOUT_MS, (detail, cause) => new Error(detail, { cause }));
      return parseCounters(answer.body);
    } catch (error) {
      log.debug("request counters not read", { error: (error as Error).message });
      return { since: 0, upstreams: [] };
    }
  }

  /** The group an upstream's requests belong to; the upstream itself when it is not one cutover knows. */
  private groupOf(u: UpstreamCounts, backends: Map<string, Map<string, string>>): string {
    if (u.site === "lb") return backends.get(u.app)?.get(u.upstream) ?? u.upstream;
    const port = Number(/:(\d+)$/.exec(u.upstream)?.[1]);
    return (Number.isInteger(port) && this.options.colorOf(u.app, port)) || u.upstream;
  }

  /** For each LB app counted: backend `address:port` → host name, from its site as applied. */
  private async backendHosts(upstreams: UpstreamCounts[]): Promise<Map<string, Map<string, string>>> {
    const apps = new Set(upstreams.filter((u) => u.site === "lb").map((u) => u.app));
    const out = new Map<string, Map<string, string>>();
    for (const app of apps) {
      const reading = await readLbSite(this.options.nginx, app).catch(() => undefined);
      const backends = [...(reading?.file?.backends ?? []), ...(reading?.serving?.backends ?? [])];
      out.set(app, new Map(backends.map((b) => [backendKey(b), b.host])));
    }
    return out;
  }
}

/** The dict's per-bucket counts as the wire's cumulative ones (`requests` is +Inf). */
function toWire(u: UpstreamCounts, group: string, since: number): cutover.v1.RequestCounters.$Properties {
  let running = 0;
  const latencyLe = LATENCY_BUCKETS_MS.map((_, i) => (running += u.buckets[i] ?? 0));
  return {
    site: u.site,
    app: u.app,
    group,
    requests: u.requests,
    status_2xx: u.byClass["2xx"],
    status_3xx: u.byClass["3xx"],
    status_4xx: u.byClass["4xx"],
    status_5xx: u.byClass["5xx"],
    upstreamErrors: u.upstreamErrors,
    latencyLe,
    latencySumMs: u.latencySumMs,
    sinceUnixMs: since,
  };
}
