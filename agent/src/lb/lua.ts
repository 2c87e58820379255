// Live mode: the Lua that nginx runs for an LB site. The site's whole balancing state
// (backends, weights, states, groups, canary percent and pin) is one text in a shared dict
// of its own; every request reads the dict's version number and re-parses the text only
// when it changed, so a change through the control socket applies from the next request,
// with no reload and no worker churn. The file embeds the same text as the fallback for a
// fresh master (empty dict), so an nginx restart keeps the last applied state.
//
// Per request:
//   access        route(): pin → canary; sticky cookie → its group; else a new user, sent to
//                 the canary for exactly weightPercent of new users (a per-worker credit
//                 counter, not a coin toss); a group with no backend falls back to the other.
//   balancer      balance(): smooth weighted round robin within the group (nginx's own
//                 algorithm), skipping peers this request already tried; counts the request
//                 as in flight on the chosen peer (`inflight <addr:port>` in the dict).
//   header filter header(): X-Cutover-Backend and X-Cutover-Lb-Revision for the agent's probes,
//                 and Set-Cookie for new users.
//   log           release(): the request is no longer in flight on its peer.

import { controlAnswerTail } from "../nginx/lua-control.js";
import { LB_REVISION_HEADER, LB_BACKEND_HEADER } from "./headers.js";
import { LB_PROBE_SUFFIX, lbDictName, lbVariable } from "./names.js";

/** Per app; a few hundred bytes of state plus one counter per backend. */
export const LB_DICT_SIZE = "1m";
/** Control API paths on the site's unix socket. */
export const STATE_PATH = "/state";
export const INFLIGHT_PATH = "/inflight";
/** Prefix of the dict keys counting requests in flight per backend (`inflight 10.0.0.1:80`). */
export const INFLIGHT_KEY_PREFIX = "inflight ";
/** State bodies are small; one buffer keeps them in memory so Lua can read them. */
const CONTROL_BODY_LIMIT = "1m";

export function indent(lines: readonly string[], depth: number): string[] {
  const pad = " ".repeat(depth * 4);
  return lines.map((line) => (line === "" ? line : pad + line));
}

function moduleKey(app: string): string {
  return `cutover_lb.${app}`;
}

/**
 * The access-phase block: defines the per-worker module on a worker's first request
 * (package.loaded is per worker and per generation), then routes the request. `app` and
 * the state text were validated: no quote, bracket or newline can end the Lua strings.
 */
export function accessBlock(app: string, fileState: string, depth: number): string[] {
  const key = moduleKey(app);
  const functions = [parseFunction(), stateFunction(app), routeFunction(), pickFunction(), balanceFunction(app), releaseFunction(), headerFunction(app)];
  return indent(
    [
      "access_by_lua_block {",
      `    local lb = package.loaded["${key}"]`,
      "    if not lb then",
      ...moduleLocals(app, fileState),
      ...functions.flatMap((lines) => ["", ...indent(lines, 2)]),
      "",
      `        package.loaded["${key}"] = lb`,
      "    end",
      "    lb.route()",
      "}",
    ],
    depth,
  );
}

/**
 * The module's locals: its dict, and the state its file was written with. The state's lines
 * are indented as they are, blank ones too (indent() would leave those empty).
 */
function moduleLocals(app: string, fileState: string): string[] {
  const stateLines = fileState.trimEnd().split("\n").map((line) => `        ${line}`);
  return [
    ...indent(
      [
        "lb = { seen = -1 }",
        `local dict = ngx.shared["${lbDictName(app)}"]`,
        "local OTHER = { stable = \"canary\", canary = \"stable\" }",
        "-- The state this file was written with: used while the dict holds none (a fresh master).",
        "local FILE_STATE = [==[",
      ],
      2,
    ),
    ...stateLines,
    "        ]==]",
  ];
}

/** parse(text): the state text (see lbStateText) as tables: canary, pin, and the up backends per pool. */
function parseFunction(): string[] {
  return [
    "local function parse(text)",
    "    local s = { credit = 0, pools = { all = { peers = {} }, stable = { peers = {} }, canary = { peers = {} } } }",
    '    for line in string.gmatch(text, "[^\\n]+") do',
    "        local f = {}",
    '        for word in string.gmatch(line, "%S+") do f[#f + 1] = word end',
    "        local kind = f[1]",
    '        if kind == "revision" then',
    "            s.revision = f[2]",
    '        elseif kind == "canary" then',
    "            s.cookie, s.percent = f[2], tonumber(f[3])",
    '            if not s.cookie or not s.percent then return nil, "bad canary line: " .. line end',
    '            s.cookie_var = "cookie_" .. s.cookie',
    '        elseif kind == "pin" then',
    '            if f[2] == "header" and f[3] then',
    '                s.pin_var = "http_" .. (string.gsub(string.lower(f[3]), "-", "_"))',
    '            elseif f[2] == "cookie" and f[3] then',
    '                s.pin_var = "cookie_" .. f[3]',
    "            else",
    '                return nil, "bad pin line: " .. line',
    "            end",
    "            s.pin_value = f[4]",
    '        elseif kind == "backend" then',
    "            local port, weight, pool = tonumber(f[4]), tonumber(f[5]), s.pools[f[7] or \"\"]",
    '            if not port or not weight or not pool then return nil, "bad backend line: " .. line end',
    '            if f[6] == "up" and weight > 0 then',
    "                -- set_current_peer parses the host like a URL: IPv6 in brackets, as in the key.",
    '                local host = string.find(f[3], ":", 1, true) and ("[" .. f[3] .. "]") or f[3]',
    '                local key = host .. ":" .. port',
    "                local all = s.pools.all.peers",
    "                all[#all + 1] = { host = host, port = port, weight = weight, current = 0, key = key }",
    "                pool.peers[#pool.peers + 1] = { host = host, port = port, weight = weight, current = 0, key = key }",
    "            end",
    "        elseif kind then",
    '            return nil, "unknown line: " .. line',
    "        end",
    "    end",
    '    if not s.revision then return nil, "no revision line" end',
    "    return s",
    "end",
  ];
}

/** lb.state(): the state in force, parsed again only when the dict's version moved. */
function stateFunction(app: string): string[] {
  return [
    "-- The state in force: re-read only when the control socket bumped the version.",
    "function lb.state()",
    '    local version = dict:get("version") or 0',
    "    if version == lb.seen then return lb.current end",
    '    local s, err = parse(dict:get("state") or FILE_STATE)',
    "    if not s then",
    `        ngx.log(ngx.ERR, "cutover lb ${app}: ignoring a malformed state: ", err)`,
    "        s = lb.current or parse(FILE_STATE)",
    "    end",
    "    lb.seen, lb.current = version, s",
    "    return s",
    "end",
  ];
}

/** lb.route(): the group this request goes to (pin, sticky cookie, or the canary credit), and a cookie for a new user. */
function routeFunction(): string[] {
  return [
    "function lb.route()",
    "    local s = lb.state()",
    "    local ctx = ngx.ctx",
    '    local group = "all"',
    "    if s.cookie then",
    "        local sticky, new = ngx.var[s.cookie_var], false",
    "        if s.pin_var and ngx.var[s.pin_var] == s.pin_value then",
    '            group = "canary"',
    '        elseif sticky == "canary" or sticky == "stable" then',
    "            group = sticky",
    "        else",
    "            -- A new user. The credit makes the canary's share exact, not a coin toss.",
    "            new, s.credit = true, s.credit + s.percent",
    "            if s.credit >= 100 then",
    '                s.credit, group = s.credit - 100, "canary"',
    "            else",
    '                group = "stable"',
    "            end",
    "        end",
    "        if #s.pools[group].peers == 0 then group = OTHER[group] end",
    "        if new then",
    "            -- The group the user was actually sent to, fallback included.",
    '            ctx.cutover_cookie = s.cookie .. "=" .. group .. "; Path=/; HttpOnly"',
    "        end",
    "    end",
    "    ctx.cutover_state, ctx.cutover_pool = s, s.pools[group]",
    "end",
  ];
}

/** pick(): smooth weighted round robin within the group, skipping peers already tried. */
function pickFunction(): string[] {
  return [
    "-- Smooth weighted round robin (nginx's), over the peers this request has not tried.",
    "local function pick(pool, tried)",
    "    local best, total = nil, 0",
    "    for _, peer in ipairs(pool.peers) do",
    "        if not tried[peer.key] then",
    "            peer.current = peer.current + peer.weight",
    "            total = total + peer.weight",
    "            if not best or peer.current > best.current then best = peer end",
    "        end",
    "    end",
    "    if best then best.current = best.current - total end",
    "    return best",
    "end",
  ];
}

/** lb.balance(): sets this try's peer and counts the request in flight on it. */
function balanceFunction(app: string): string[] {
  return [
    "function lb.balance()",
    "    local ctx = ngx.ctx",
    "    local pool = ctx.cutover_pool",
    "    if not pool then return ngx.exit(ngx.ERROR) end",
    '    local balancer = require("ngx.balancer")',
    "    local tried = ctx.cutover_tried",
    "    if tried then",
    "        lb.release(ctx) -- the previous try failed (proxy_next_upstream)",
    "    else",
    "        tried = {}",
    "        ctx.cutover_tried = tried",
    "        if #pool.peers > 1 then balancer.set_more_tries(#pool.peers - 1) end",
    "    end",
    "    local peer = pick(pool, tried)",
    "    if not peer then return ngx.exit(ngx.ERROR) end",
    "    tried[peer.key] = true",
    "    ctx.cutover_peer = peer.key",
    "    local ok, err = balancer.set_current_peer(peer.host, peer.port)",
    "    if not ok then",
    `        ngx.log(ngx.ERR, "cutover lb ${app}: cannot use peer ", peer.key, ": ", err)`,
    "        return ngx.exit(ngx.ERROR)",
    "    end",
    `    dict:incr("${INFLIGHT_KEY_PREFIX}" .. peer.key, 1, 0)`,
    "    ctx.cutover_counted = true",
    "end",
  ];
}

/** lb.release(ctx): the request is no longer in flight on its peer. */
function releaseFunction(): string[] {
  return [
    "function lb.release(ctx)",
    "    if ctx.cutover_counted then",
    "        ctx.cutover_counted = nil",
    `        dict:incr("${INFLIGHT_KEY_PREFIX}" .. ctx.cutover_peer, -1, 0)`,
    "    end",
    "end",
  ];
}

/**
 * lb.header(): the backend and revision headers for the agent's probes (the site's probe
 * map, LB_PROBE_SUFFIX, says whether this request carries the host's token), and the new
 * user's cookie beside any the app set.
 */
function headerFunction(app: string): string[] {
  const probe = lbVariable(app, LB_PROBE_SUFFIX).slice(1);
  return [
    "function lb.header()",
    "    local ctx = ngx.ctx",
    `    if ngx.var.${probe} == "1" then`,
    `        if ctx.cutover_peer then ngx.header["${LB_BACKEND_HEADER}"] = ctx.cutover_peer end`,
    `        if ctx.cutover_state then ngx.header["${LB_REVISION_HEADER}"] = ctx.cutover_state.revision end`,
    "    end",
    "    local cookie = ctx.cutover_cookie",
    "    if cookie then",
    '        local existing = ngx.header["Set-Cookie"]',
    '        if type(existing) == "table" then',
    "            existing[#existing + 1] = cookie",
    "            cookie = existing",
    "        elseif existing then",
    "            cookie = { existing, cookie }",
    "        end",
    '        ngx.header["Set-Cookie"] = cookie',
    "    end",
    "end",
  ];
}

/** A phase that only calls into the module defined by the access block (same worker, same request). */
/** The Lua lines that call the app's per-worker module, when this worker has defined it. */
export function moduleCall(app: string, call: string): string[] {
  return [`local lb = package.loaded["${moduleKey(app)}"]`, `if lb then ${call} end`];
}

export function callBlock(directive: string, app: string, call: string, depth: number): string[] {
  return indent([`${directive} {`, ...moduleCall(app, call).map((line) => `    ${line}`), "}"], depth);
}

export function balancerBlock(app: string, depth: number): string[] {
  return indent(
    [
      "balancer_by_lua_block {",
      `    local lb = package.loaded["${moduleKey(app)}"]`,
      "    if not lb then return ngx.exit(ngx.ERROR) end",
      "    lb.balance()",
      "}",
    ],
    depth,
  );
}

/**
 * The site's control server, on a unix socket of its own: GET/PUT/DELETE /state (every
 * answer's body is the state *before* the call, "" when none, so one PUT both applies and
 * says what to restore), GET /inflight (`<addr:port> <count>` lines).
 */
export function controlServerBlock(app: string, socketPath: string, depth: number): string[] {
  const dict = `ngx.shared["${lbDictName(app)}"]`;
  return indent(
    [
      "server {",
      `    listen unix:${socketPath};`,
      "    access_log off;",
      `    client_max_body_size ${CONTROL_BODY_LIMIT};`,
      `    client_body_buffer_size ${CONTROL_BODY_LIMIT};`,
      "",
      `    location = ${STATE_PATH} {`,
      "        content_by_lua_block {",
      `            local dict = ${dict}`,
      "            local method = ngx.req.get_method()",
      '            local previous = dict:get("state")',
      '            if method == "PUT" then',
      "                ngx.req.read_body()",
      "                local body = ngx.req.get_body_data()",
      '                if not body or body == "" then return ngx.exit(ngx.HTTP_BAD_REQUEST) end',
      '                local ok, err = dict:set("state", body)',
      "                if not ok then",
      `                    ngx.log(ngx.ERR, "cutover lb ${app}: cannot store the state: ", err)`,
      "                    return ngx.exit(ngx.HTTP_INTERNAL_SERVER_ERROR)",
      "                end",
      '                dict:incr("version", 1, 0)',
      ...controlAnswerTail(['dict:delete("state")', 'dict:incr("version", 1, 0)']),
      "        }",
      "    }",
      "",
      `    location = ${INFLIGHT_PATH} {`,
      "        content_by_lua_block {",
      `            local dict = ${dict}`,
      '            ngx.header["Content-Type"] = "text/plain"',
      "            for _, key in ipairs(dict:get_keys(0)) do",
      `                if string.sub(key, 1, ${INFLIGHT_KEY_PREFIX.length}) == "${INFLIGHT_KEY_PREFIX}" then`,
      `                    ngx.say(string.sub(key, ${INFLIGHT_KEY_PREFIX.length + 1}), " ", dict:get(key) or 0)`,
      "                end",
      "            end",
      "        }",
      "    }",
      "",
      "    location / {",
      "        return 404;",
      "    }",
      "}",
    ],
    depth,
  );
}
