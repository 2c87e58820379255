import { LATENCY_BUCKETS_MS, MAX_REQUEST_COUNTERS, type cutover } from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import { backendKey, readLbSite } from "../lb/index.js";
import type { NginxRunner } from "../nginx/index.js";
import { parseCounters, REQUESTS_PATH, type UpstreamCounts } from "../nginx/request-counting.js";
import { unixHttp } from "../nginx/unix-http.js";

const READ_TIMEOUT_MS = 2_000;

export interface RequestCounterOptions {
  nginx: NginxRunner;
  /** The color of an app's port on this host (from its definition), or undefined when it is neither. */
  colorOf(app: string, port: number): string | undefined;
  log: Logger;
}

/**
 * The request counters of this host's nginx for a heartbeat
 * (RequestCounters in resources.proto): GET /requests on the control socket,
 * each upstream named by its group — an app site's by the color its port
 * belongs to, an LB site's by the backend host at that address. Live mode
 * only (the counting is Lua); without the Lua module there are none.
 */
export class RequestCounterSource {
  #warnedTooMany = false;

  constructor(private readonly options: RequestCounterOptions) {}

  async read(): Promise<cutover.v1.RequestCounters.$Properties[]> {
    const { nginx, log } = this.options;
    if (!nginx.detectCapabilities().lua || !nginx.isRunning()) return [];
    let text: string;
    try {
      text = await unixHttp(nginx.controlSocket, "GET", REQUESTS_PATH, "", READ_TIMEOUT_MS, (detail, cause) => new Error(detail, { cause }));
    } catch (error) {
      log.debug("request counters not read", { error: (error as Error).message });
      return [];
    }
    const { since, upstreams } = parseCounters(text);
    const backends = await this.backendHosts(upstreams);
    const counters = upstreams.map((u) => toWire(u, this.groupOf(u, backends), since));
    if (counters.length > MAX_REQUEST_COUNTERS && !this.#warnedTooMany) {
      this.#warnedTooMany = true;
      log.warn("more request counters than a heartbeat carries; the rest are dropped", { counters: counters.length, max: MAX_REQUEST_COUNTERS });
    }
    return counters.slice(0, MAX_REQUEST_COUNTERS);
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
