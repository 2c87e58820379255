import { isIP } from "node:net";
import { controlAnswerTail } from "./lua-control.js";
import { countersLocation } from "./request-counting.js";
import { UPSTREAM_HEADER } from "./render.js";
import { upstreamName } from "./site.js";
// Live switching: the Lua that nginx runs. Each live site's upstream asks a shared dict
// for its port on every request; the agent changes the dict through a control server on
// a unix socket. One dict lookup per request, no reload, no worker churn.

/** Name of the `lua_shared_dict` holding `app -> live port`, shared by all workers. */
export const LIVE_DICT = "cutover_live";
/** A few bytes per app; 1m holds thousands of apps and is never full, so nothing is evicted. */
export const LIVE_DICT_SIZE = "1m";
/** Path prefix of the control API: GET/PUT/DELETE /live/<app>. */
export const CONTROL_PATH = "/live/";
/** The control server's internal location through which a PUT's probe reaches an app's upstream. */
const PROBE_LOCATION = "/upstream/";
/** Answer headers of a PUT with a probe: the status the app gave, and the peer that gave it. */
export const PROBE_STATUS_HEADER = "X-Cutover-Probe-Status";
export const PROBE_UPSTREAM_HEADER = "X-Cutover-Probe-Upstream";
/** Path prefix of GET /warm/<app> (warmLocation). */
export const WARM_PATH = "/warm/";
/** At most as many warmed connections as an upstream keeps idle per worker (render.ts, UPSTREAM_KEEPALIVE). */
export const MAX_WARM_CONNECTIONS = 32;
/** How long nginx waits for the probed app, below the agent's wait for the PUT's answer. */
export const PROBE_TIMEOUT_S = 2;
/** What a probe path may hold: the spec's URL path characters (the agent checks them too). */
const LUA_URL_PATH = "^/[%w%-._~!$&'()*+,;=:@/?%%]*$";
/** A probe's Host header: a host[:port] or a bracketed IPv6 literal. */
const LUA_HOST = "^[%w%.%-:%[%]]+$";

function indent(lines: string[], depth: number): string[] {
  const pad = " ".repeat(depth * 4);
  return lines.map((line) => (line === "" ? line : pad + line));
}

/**
 * The balancer of a live upstream: the dict's port for this app, or the rendered fallback
 * when the dict has none (a fresh master after a restart). `app`, `address` and the port
 * were validated (alphanumerics, an IP literal, an integer) so they are safe in Lua strings.
 */
export function balancerBlock(app: string, address: string, fallbackPort: number, depth: number): string[] {
  return indent(
    [
      "balancer_by_lua_block {",
      // A warming probe from the control server names its port (lua.ts, probeLocation); users' requests are never subrequests.
      `    local port = ngx.is_subrequest and tonumber(ngx.var.cutover_probe_port) or ngx.shared.${LIVE_DICT}:get("${app}") or ${fallbackPort}`,
      // ngx.balancer wants an IPv6 literal in brackets.
      `    local ok, err = require("ngx.balancer").set_current_peer("${isIP(address) === 6 ? `[${address}]` : address}", port)`,
      "    if not ok then",
      `        ngx.log(ngx.ERR, "cutover: cannot use peer ${address}:", port, ": ", err)`,
      "        return ngx.exit(ngx.ERROR)",
      "    end",
      "}",
    ],
    depth,
  );
}

/**
 * The control server: GET reads an app's port, PUT (body: the port) sets it, DELETE clears
 * it; every answer's body is the value *before* the call ("" when none), so one PUT both
 * switches and tells the agent what to restore on failure. GET /requests dumps the request
 * counters (request-counting.ts). Reachable only through the unix
 * socket, whose directory only the agent's user can enter.
 *
 * A PUT with `?probe=<path>&host=<host>` also proves the switch: right after the dict is set,
 * before this worker serves another request, a subrequest GETs <path> through the app's
 * upstream, whose balancer reads the dict like every user request's; the answer's status and
 * the peer that gave it come back in PROBE_STATUS_HEADER and PROBE_UPSTREAM_HEADER. A probe
 * that is not a URL path (or host not a host) is refused (400) before the dict is touched.
 */
export function controlServerBlock(socketPath: string, depth: number): string[] {
  return indent(
    [
      "server {",
      `    listen unix:${socketPath};`,
      "    access_log off;",
      "",
      `    location ${CONTROL_PATH} {`,
      "        content_by_lua_block {",
      `            local live = ngx.shared.${LIVE_DICT}`,
      `            local app = string.match(ngx.var.uri, "^${CONTROL_PATH}([%w_-]+)$")`,
      "            if not app then",
      "                return ngx.exit(ngx.HTTP_NOT_FOUND)",
      "            end",
      "            local method = ngx.req.get_method()",
      "            local previous = live:get(app)",
      '            if method == "PUT" then',
      "                ngx.req.read_body()",
      "                local port = tonumber(ngx.req.get_body_data())",
      "                if not port or port < 1 or port > 65535 or port % 1 ~= 0 then",
      "                    return ngx.exit(ngx.HTTP_BAD_REQUEST)",
      "                end",
      "                local probe = ngx.var.arg_probe and ngx.unescape_uri(ngx.var.arg_probe)",
      '                local host = ngx.unescape_uri(ngx.var.arg_host or "localhost")',
      `                if probe and not (string.match(probe, "${LUA_URL_PATH}") and string.match(host, "${LUA_HOST}")) then`,
      "                    return ngx.exit(ngx.HTTP_BAD_REQUEST)",
      "                end",
      "                local ok, err = live:set(app, port)",
      "                if not ok then",
      '                    ngx.log(ngx.ERR, "cutover: cannot set live port of ", app, ": ", err)',
      "                    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)",
      "                end",
      "                if probe then",
      `                    local res = ngx.location.capture("${PROBE_LOCATION}" .. app, { args = { path = probe, host = host } })`,
      `                    ngx.header["${PROBE_STATUS_HEADER}"] = res.status`,
      `                    ngx.header["${PROBE_UPSTREAM_HEADER}"] = res.header["${UPSTREAM_HEADER}"] or ""`,
      "                end",
      ...controlAnswerTail(["live:delete(app)"]),
      "        }",
      "    }",
      "",
      ...countersLocation(1),
      "",
      ...probeLocation(),
      "",
      ...warmLocation(),
      "",
      "    location / {",
      "        return 404;",
      "    }",
      "}",
    ],
    depth,
  );
}

/**
 * GET /warm/<app>?port=&probe=&host=&connections=N: before a live switch, N probes at once
 * through the app's upstream to `port` (the balancer takes it from them, not from the dict),
 * so this worker holds N kept-alive connections to the new color when the dict moves every
 * user to it: the first requests there wait for no connect and no accept. Answers the
 * probes' statuses, one per line; 400 for a bad port, probe, host or count. Users' routing
 * is untouched.
 */
function warmLocation(): string[] {
  return [
    `    location ${WARM_PATH} {`,
    "        content_by_lua_block {",
    `            local app = string.match(ngx.var.uri, "^${WARM_PATH}([%w_-]+)$")`,
    "            local port = tonumber(ngx.var.arg_port)",
    "            local count = tonumber(ngx.var.arg_connections)",
    '            local probe = ngx.unescape_uri(ngx.var.arg_probe or "")',
    '            local host = ngx.unescape_uri(ngx.var.arg_host or "localhost")',
    "            if not app or not port or port < 1 or port > 65535 or port % 1 ~= 0",
    `                or not count or count < 1 or count > ${MAX_WARM_CONNECTIONS} or count % 1 ~= 0`,
    `                or not string.match(probe, "${LUA_URL_PATH}") or not string.match(host, "${LUA_HOST}") then`,
    "                return ngx.exit(ngx.HTTP_BAD_REQUEST)",
    "            end",
    "            local probes = {}",
    "            for i = 1, count do",
    `                probes[i] = { "${PROBE_LOCATION}" .. app, { args = { path = probe, host = host, port = port } } }`,
    "            end",
    '            ngx.header["Content-Type"] = "text/plain"',
    "            for _, res in ipairs({ ngx.location.capture_multi(probes) }) do",
    "                ngx.say(res.status)",
    "            end",
    "        }",
    "    }",
  ];
}

/**
 * The probe's way to an app: its upstream (named as render.ts names it), with none of the
 * PUT's headers or body, the path and Host the PUT gave, and the peer that answered in
 * UPSTREAM_HEADER (add_header does not run for subrequests; a header filter does). A
 * warm-up's probes also carry `port`, which the balancer then takes instead of the dict's;
 * the PUT's probe carries none, so it is routed by the dict it just set.
 */
function probeLocation(): string[] {
  return [
    `    location ${PROBE_LOCATION} {`,
    "        internal;",
    '        set $cutover_probe_upstream "";',
    '        set $cutover_probe_uri "";',
    '        set $cutover_probe_host "";',
    '        set $cutover_probe_port "";',
    "        rewrite_by_lua_block {",
    `            local app = string.match(ngx.var.uri, "^${PROBE_LOCATION}([%w_-]+)$")`,
    "            if not app then",
    "                return ngx.exit(ngx.HTTP_NOT_FOUND)",
    "            end",
    `            ngx.var.cutover_probe_upstream = "${upstreamName("")}" .. app`,
    "            ngx.var.cutover_probe_uri = ngx.unescape_uri(ngx.var.arg_path)",
    "            ngx.var.cutover_probe_host = ngx.unescape_uri(ngx.var.arg_host)",
    '            ngx.var.cutover_probe_port = ngx.var.arg_port or ""',
    "        }",
    "        proxy_http_version 1.1;",
    "        proxy_pass_request_headers off;",
    "        proxy_pass_request_body off;",
    '        proxy_set_header Connection "";',
    "        proxy_set_header Host $cutover_probe_host;",
    `        proxy_connect_timeout ${PROBE_TIMEOUT_S}s;`,
    `        proxy_send_timeout ${PROBE_TIMEOUT_S}s;`,
    `        proxy_read_timeout ${PROBE_TIMEOUT_S}s;`,
    "        proxy_pass http://$cutover_probe_upstream$cutover_probe_uri;",
    "        header_filter_by_lua_block {",
    `            ngx.header["${UPSTREAM_HEADER}"] = ngx.var.upstream_addr`,
    "        }",
    "    }",
  ];
}
