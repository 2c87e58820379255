import { isIP } from "node:net";
import { countersLocation } from "./request-counting.js";
// Live switching: the Lua that nginx runs. Each live site's upstream asks a shared dict
// for its port on every request; the agent changes the dict through a control server on
// a unix socket. One dict lookup per request, no reload, no worker churn.

/** Name of the `lua_shared_dict` holding `app -> live port`, shared by all workers. */
export const LIVE_DICT = "cutover_live";
/** A few bytes per app; 1m holds thousands of apps and is never full, so nothing is evicted. */
export const LIVE_DICT_SIZE = "1m";
/** Path prefix of the control API: GET/PUT/DELETE /live/<app>. */
export const CONTROL_PATH = "/live/";

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
      `    local port = ngx.shared.${LIVE_DICT}:get("${app}") or ${fallbackPort}`,
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
      "                local ok, err = live:set(app, port)",
      "                if not ok then",
      '                    ngx.log(ngx.ERR, "cutover: cannot set live port of ", app, ": ", err)',
      "                    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)",
      "                end",
      '            elseif method == "DELETE" then',
      "                live:delete(app)",
      '            elseif method ~= "GET" then',
      "                return ngx.exit(ngx.HTTP_NOT_ALLOWED)",
      "            end",
      '            ngx.header["Content-Type"] = "text/plain"',
      '            ngx.print(previous or "")',
      "        }",
      "    }",
      "",
      ...countersLocation(1),
      "",
      "    location / {",
      "        return 404;",
      "    }",
      "}",
    ],
    depth,
  );
}
