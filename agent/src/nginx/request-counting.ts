import { LATENCY_BUCKETS_MS } from "@cutover/protocol";
// Request counting where traffic passes. Live mode (the Lua module is there):
// every http site's server counts each request in its log phase, into one
// shared dict: by site kind, app and the upstream that answered (the last of
// $upstream_addr), the status class, upstream errors, the latency bucket and
// the latency sum; the control server's GET /requests dumps the dict. Reload
// mode (no Lua): the site writes one short line per request to a request log
// the agent reads and counts the same way (`countRequest`). Either way the
// agent turns them into RequestCounters (agent/src/requests).

/** The `lua_shared_dict` of the counters. ~25 keys of ~50 bytes per app and upstream: 4m holds thousands. */
export const REQUESTS_DICT = "cutover_requests";
export const REQUESTS_DICT_SIZE = "4m";
/** Control-server path that dumps the counters, one `key\tvalue` line each, the first `since\t<unix ms>`. */
export const REQUESTS_PATH = "/requests";

/** The kind of site a counter comes from: a host's own proxy for an app, or a front load balancer. */
export type CountedSite = "app" | "lb";

/**
 * The log-phase block of a site's server: one dict increment per field. The
 * bucket counted is the first bound the latency fits (the agent makes them
 * cumulative); past the last bound it is bucket `LATENCY_BUCKETS_MS.length + 1`.
 * An upstream error is a 502/503/504 whose last try got no response header.
 * `app` was validated (alphanumerics, `-`, `_`), so it is safe in a Lua string.
 * `before`: Lua the site's own log phase runs first (a location has one log block).
 */
export function countingBlock(site: CountedSite, app: string, depth: number, before: readonly string[] = []): string[] {
  const pad = " ".repeat(depth * 4);
  return [
    "log_by_lua_block {",
    ...before.map((line) => `    ${line}`),
    `    local d = ngx.shared.${REQUESTS_DICT}`,
    '    local upstream = string.match(ngx.var.upstream_addr or "", "([^%s,]+)$") or "none"',
    `    local k = "${site}\\t${app}\\t" .. upstream .. "\\t"`,
    "    local status = ngx.status",
    '    d:incr(k .. "n", 1, 0)',
    '    d:incr(k .. math.floor(status / 100) .. "xx", 1, 0)',
    '    if status >= 502 and status <= 504 and string.sub(ngx.var.upstream_header_time or "-", -1) == "-" then',
    '        d:incr(k .. "ue", 1, 0)',
    "    end",
    "    local ms = (tonumber(ngx.var.request_time) or 0) * 1000",
    '    d:incr(k .. "sum", ms, 0)',
    `    local bucket = ${LATENCY_BUCKETS_MS.length + 1}`,
    `    for i, bound in ipairs({ ${LATENCY_BUCKETS_MS.join(", ")} }) do`,
    "        if ms <= bound then bucket = i break end",
    "    end",
    '    d:incr(k .. "b" .. bucket, 1, 0)',
    "}",
  ].map((line) => (line === "" ? line : pad + line));
}

/** The control server's location that dumps the counters (inside its server block). */
export function countersLocation(depth: number): string[] {
  const pad = " ".repeat(depth * 4);
  return [
    `location = ${REQUESTS_PATH} {`,
    "    content_by_lua_block {",
    `        local d = ngx.shared.${REQUESTS_DICT}`,
    "        -- When the counters started: the first read after the dict was made (an nginx start).",
    '        d:add("since", math.floor(ngx.now() * 1000))',
    '        ngx.header["Content-Type"] = "text/plain"',
    '        local out = { "since\\t" .. d:get("since") }',
    "        for _, key in ipairs(d:get_keys(0)) do",
    '            if key ~= "since" then out[#out + 1] = key .. "\\t" .. tostring(d:get(key)) end',
    "        end",
    '        ngx.print(table.concat(out, "\\n"))',
    "    }",
    "}",
  ].map((line) => (line === "" ? line : pad + line));
}

/** One upstream's counters as the dict holds them. */
export interface UpstreamCounts {
  site: CountedSite;
  app: string;
  /** `address:port` of the upstream that answered, or "none" when nginx answered itself. */
  upstream: string;
  requests: number;
  byClass: Record<"2xx" | "3xx" | "4xx" | "5xx", number>;
  upstreamErrors: number;
  latencySumMs: number;
  /** Requests per bucket, not cumulative: index i is bound LATENCY_BUCKETS_MS[i], the last is past every bound. */
  buckets: number[];
}

/** Parses GET /requests: the counters by site, app and upstream, and when they started. */
export function parseCounters(text: string): { since: number; upstreams: UpstreamCounts[] } {
  let since = 0;
  const byKey = new Map<string, UpstreamCounts>();
  for (const line of text.split("\n")) {
    const parts = line.split("\t");
    if (parts[0] === "since" && parts.length === 2) {
      since = Number(parts[1]) || 0;
      continue;
    }
    if (parts.length !== 5) continue;
    const [site, app, upstream, field, raw] = parts as [string, string, string, string, string];
    if (site !== "app" && site !== "lb") continue;
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    const key = `${site}\t${app}\t${upstream}`;
    let counts = byKey.get(key);
    if (!counts) {
      counts = emptyCounts(site, app, upstream);
      byKey.set(key, counts);
    }
    if (field === "n") counts.requests = value;
    else if (field === "ue") counts.upstreamErrors = value;
    else if (field === "sum") counts.latencySumMs = value;
    else if (field in counts.byClass) counts.byClass[field as keyof UpstreamCounts["byClass"]] = value;
    else if (/^b\d+$/.test(field)) {
      const index = Number(field.slice(1)) - 1;
      if (index >= 0 && index < counts.buckets.length) counts.buckets[index] = value;
    }
  }
  return { since, upstreams: [...byKey.values()] };
}

/** A new, empty counter of one upstream. */
export function emptyCounts(site: CountedSite, app: string, upstream: string): UpstreamCounts {
  return { site, app, upstream, requests: 0, byClass: { "2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0 }, upstreamErrors: 0, latencySumMs: 0, buckets: Array(LATENCY_BUCKETS_MS.length + 1).fill(0) };
}

/**
 * Counts one request as the Lua block does: `upstreamHeaderTime` is nginx's
 * $upstream_header_time ("-" at its end: the last try got no response header).
 */
export function countRequest(counts: UpstreamCounts, status: number, requestTimeMs: number, upstreamHeaderTime: string): void {
  counts.requests++;
  const cls = `${Math.floor(status / 100)}xx`;
  if (cls in counts.byClass) counts.byClass[cls as keyof UpstreamCounts["byClass"]]++;
  if (status >= 502 && status <= 504 && upstreamHeaderTime.endsWith("-")) counts.upstreamErrors++;
  counts.latencySumMs += requestTimeMs;
  const bucket = LATENCY_BUCKETS_MS.findIndex((bound) => requestTimeMs <= bound);
  counts.buckets[bucket === -1 ? LATENCY_BUCKETS_MS.length : bucket]!++;
}

/** The log_format of a reload-mode site's request log (http level; one per site, so two site files never clash). */
export function requestLogFormat(site: CountedSite, app: string): string[] {
  return [`log_format ${requestLogFormatName(site, app)} '$status $request_time $upstream_header_time $upstream_addr';`];
}

function requestLogFormatName(site: CountedSite, app: string): string {
  return `cutover_requests_${site}_${app}`;
}

/** The server-level line that writes the request log; `path` is the runner's requestLogPath. */
export function requestLogLine(site: CountedSite, app: string, path: string, depth: number): string[] {
  return [`${" ".repeat(depth * 4)}access_log ${path} ${requestLogFormatName(site, app)};`];
}

/**
 * Counts the complete lines of a request log into `into` (by upstream: the
 * last of $upstream_addr, "none" when nginx answered itself). Returns how
 * many characters it consumed: a last line still being written is left for
 * the next read.
 */
export function countLogLines(text: string, site: CountedSite, app: string, into: Map<string, UpstreamCounts>): number {
  const end = text.lastIndexOf("\n") + 1;
  for (const line of text.slice(0, end).split("\n")) {
    const [status, requestTime, headerTime, ...addresses] = line.split(" ");
    if (!status || requestTime === undefined || headerTime === undefined) continue;
    // $upstream_addr lists every try ("a, b"; " : " between upstream groups): the last one answered; "-" is none.
    const upstream = addresses.join(" ").split(/[\s,]+/).filter((token) => token !== "" && token !== ":" && token !== "-").at(-1) ?? "none";
    let counts = into.get(upstream);
    if (!counts) into.set(upstream, (counts = emptyCounts(site, app, upstream)));
    countRequest(counts, Number(status), (Number(requestTime) || 0) * 1000, headerTime);
  }
  return end;
}
