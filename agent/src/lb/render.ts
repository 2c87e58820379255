import {
  backendKey,
  effectiveCanaryPercent,
  lbPools,
  lbRevision,
  normalizeLbSite,
  receivesNew,
  renderLbHeader,
  serializeLbState,
  type LbBackend,
  type LbCanary,
  type LbGroup,
  type LbSiteConfig,
} from "./config.js";
import { LbError } from "./errors.js";
import { LB_BACKEND_HEADER, LB_REVISION_HEADER, LB_UPSTREAM_KEEPALIVE } from "./headers.js";
import { countingBlock, requestLogFormat, requestLogLine } from "../nginx/request-counting.js";
import { DROP_PROBE_HEADER, probeOnlyMap } from "../nginx/probe-token.js";
import { PROXY_REQUEST_LINES } from "../nginx/render.js";
import { redirectServerLines, serverHeadLines } from "../nginx/virtual-host.js";
import { isPlainPath } from "../nginx/site.js";
import { accessBlock, balancerBlock, callBlock, controlServerBlock, LB_DICT_SIZE, moduleCall } from "./lua.js";
import { DEFAULT_LB_SOCKET_DIR, LB_PROBE_SUFFIX, lbDictName, lbSocketPath, lbUpstream, lbVariable } from "./names.js";

/*
 * One app's front LB site, in one file included in the http block.
 *
 * reload mode is plain nginx, so it works on any stock nginx (no Lua needed): one
 * `upstream` per group with `weight=`, drained/down backends left out (their in-flight
 * requests finish in the workers the reload replaces), and the canary decision as
 * variables: `map` on the pin header/cookie and on the sticky cookie, `split_clients`
 * on $request_id for new users, a `map` from the route to the upstream name
 * (`proxy_pass http://$var` picks the upstream of that name) and one to the Set-Cookie
 * value (add_header skips empty values, so only new users get the cookie). Every
 * change is a reload.
 *
 * live mode needs the Lua module: one upstream whose balancer reads the whole state from
 * a shared dict of the site's own (see lua.ts), set through a control server on a unix
 * socket of its own, also in this file. Only app, listen address/port and mode are
 * structure; any other change is a dict update with no reload.
 */

export interface RenderLbOptions {
  /** The host's probe token (NginxRunner.probeToken): only requests carrying it are told the backend and revision (probe-token.ts). */
  probeToken: string;
  /** Live mode's control socket; the runner passes `lbControlSocket(runner, app)`. */
  controlSocket?: string;
  /** Reload mode: the request log the agent counts (NginxRunner.requestLogPath); absent, requests are not counted. */
  requestLog?: string;
}

/** Unused placeholder peer: nginx wants a server line in every upstream, the Lua balancer picks every real peer. */
const LIVE_PLACEHOLDER_PEER = "127.0.0.1:1";

export function renderLbSite(input: LbSiteConfig, options: RenderLbOptions): string {
  const config = normalizeLbSite(input);
  const text = config.switchMode === "live"
    ? renderLive(config, options.controlSocket ?? lbSocketPath(DEFAULT_LB_SOCKET_DIR, config.app), options.probeToken)
    : renderReload(config, options.requestLog, options.probeToken);
  const redirect = redirectServerLines(config.listenAddress, config.listenPort, config.virtualHost);
  return redirect.length === 0 ? text : `${text}${redirect.slice(1).join("\n")}\n`;
}

function serverHead(config: LbSiteConfig): string[] {
  return [
    "server {",
    ...serverHeadLines(config.listenAddress, config.listenPort, config.virtualHost),
    "",
    ...PROXY_REQUEST_LINES,
    DROP_PROBE_HEADER,
    "    # A backend that refuses or times out: the request (if idempotent) goes to another one.",
    "    proxy_next_upstream error timeout;",
    `    proxy_hide_header ${LB_BACKEND_HEADER};`,
    `    proxy_hide_header ${LB_REVISION_HEADER};`,
  ];
}

function idleComment(config: LbSiteConfig): string[] {
  const idle = config.backends.filter((b) => !receivesNew(b));
  if (idle.length === 0) return [];
  const why = (b: LbBackend) => (b.state === "up" ? "weight 0" : b.state);
  return [`# No new requests: ${idle.map((b) => `${b.host} ${backendKey(b)} (${why(b)})`).join(", ")}`];
}

function upstreamBlock(name: string, backends: readonly LbBackend[]): string[] {
  return [
    `upstream ${name} {`,
    ...backends.map((b) => `    server ${backendKey(b)} weight=${b.weight};  # ${b.host}`),
    `    keepalive ${LB_UPSTREAM_KEEPALIVE};`,
    "}",
  ];
}

/** Regex for an exact, case-sensitive match of a validated value (only '.' is special in it). */
function exactRegex(value: string): string {
  return `"~^${value.replaceAll(".", "\\.")}$"`;
}

function renderReload(config: LbSiteConfig, requestLog: string | undefined, probeToken: string): string {
  if (requestLog !== undefined && !isPlainPath(requestLog)) throw new LbError("ERR_LB_INVALID_SITE", `LB site ${config.app}: the request log path ${JSON.stringify(requestLog)} is not a plain absolute path`);
  const { app } = config;
  const pools = lbPools(config);
  const backendVar = lbVariable(app, "backend");
  const shownBackend = lbVariable(app, "backend_shown");
  const shownRevision = lbVariable(app, "revision_shown");
  const lines = [renderLbHeader(config), ...idleComment(config)];
  let target: string;
  let setCookie: string | null = null;
  if (config.canary === undefined) {
    lines.push(...upstreamBlock(lbUpstream(app, "pool"), pools.all), "");
    target = lbUpstream(app, "pool");
  } else {
    for (const group of ["stable", "canary"] as const) {
      if (pools[group].length > 0) lines.push(...upstreamBlock(lbUpstream(app, group), pools[group]), "");
    }
    lines.push(...canaryMaps(config, config.canary));
    target = lbVariable(app, "upstream");
    setCookie = lbVariable(app, "setcookie");
  }
  lines.push(
    "# The peer that answered: the last of $upstream_addr's list when a failed try moved the request.",
    `map $upstream_addr ${backendVar} {`,
    "    volatile;",
    '    "~([^\\s,]+)$" $1;',
    '    default "";',
    "}",
    ...probeOnlyMap(shownBackend, backendVar, probeToken),
    ...probeOnlyMap(shownRevision, `"${lbRevision(config)}"`, probeToken),
    "",
    ...(requestLog ? [...requestLogFormat("lb", app), ""] : []),
    ...serverHead(config),
    ...(requestLog ? requestLogLine("lb", app, requestLog, 1) : []),
    `    add_header ${LB_BACKEND_HEADER} ${shownBackend} always;`,
    `    add_header ${LB_REVISION_HEADER} ${shownRevision} always;`,
    ...(setCookie === null ? [] : [`    add_header Set-Cookie ${setCookie} always;`]),
    "",
    "    location / {",
    `        proxy_pass http://${target};`,
    "    }",
    "}",
    "",
  );
  return lines.join("\n");
}

/** pin → canary; sticky cookie → its group; else split_clients for new users; then upstream and Set-Cookie. */
function canaryMaps(config: LbSiteConfig, canary: LbCanary): string[] {
  const { app } = config;
  const pools = lbPools(config);
  const percent = effectiveCanaryPercent(config);
  const [pin, sticky, fresh, route] = [lbVariable(app, "pin"), lbVariable(app, "sticky"), lbVariable(app, "new"), lbVariable(app, "route")];
  const targetOf = (group: LbGroup) => {
    const other: LbGroup = group === "canary" ? "stable" : "canary";
    return lbUpstream(app, pools[group].length > 0 ? group : other);
  };
  const cookie = (group: LbGroup) => `"${canary.cookie}=${group}; Path=/; HttpOnly"`;
  const lines: string[] = [];
  if (canary.pin !== undefined) {
    const source = canary.pin.kind === "header" ? `$http_${canary.pin.name.toLowerCase().replaceAll("-", "_")}` : `$cookie_${canary.pin.name}`;
    lines.push(
      `# Pinned users (${canary.pin.kind} ${canary.pin.name}) always reach the canary.`,
      `map ${source} ${pin} {`,
      `    ${exactRegex(canary.pin.value)} pin;`,
      '    default "";',
      "}",
      "",
    );
  }
  const split = percent >= 100 ? ["    100% canary;"] : [...(percent > 0 ? [`    ${percent}% canary;`] : []), "    * stable;"];
  lines.push(
    "# Returning users keep the group their cookie names.",
    `map $cookie_${canary.cookie} ${sticky} {`,
    '    "~^canary$" canary;',
    '    "~^stable$" stable;',
    '    default "";',
    "}",
    "",
    `# New users: ${percent}% to the canary${percent !== canary.weightPercent ? ` (configured ${canary.weightPercent}%, but a group has no backend)` : ""}.`,
    `split_clients "\${request_id}" ${fresh} {`,
    ...split,
    "}",
    "",
  );
  if (canary.pin !== undefined) {
    lines.push(`map "${pin}:${sticky}:${fresh}" ${route} {`, '    "~^pin:" canary;', '    "~^:canary:" canary;', '    "~^:stable:" stable;', '    "~^::canary$" new-canary;');
  } else {
    lines.push(`map "${sticky}:${fresh}" ${route} {`, '    "~^canary:" canary;', '    "~^stable:" stable;', '    "~^:canary$" new-canary;');
  }
  lines.push(
    "    default new-stable;",
    "}",
    "",
    `map ${route} ${lbVariable(app, "upstream")} {`,
    `    canary ${targetOf("canary")};`,
    `    new-canary ${targetOf("canary")};`,
    `    default ${targetOf("stable")};`,
    "}",
    "",
    `map ${route} ${lbVariable(app, "setcookie")} {`,
    `    new-canary ${cookie("canary")};`,
    `    new-stable ${cookie("stable")};`,
    '    default "";',
    "}",
    "",
  );
  return lines;
}

function renderLive(config: LbSiteConfig, controlSocket: string, probeToken: string): string {
  const { app } = config;
  const upstream = lbUpstream(app, "live");
  return [
    renderLbHeader(config),
    ...idleComment(config),
    `lua_shared_dict ${lbDictName(app)} ${LB_DICT_SIZE};`,
    // lb.header() names the backend and revision only where this is "1" (lua.ts).
    ...probeOnlyMap(lbVariable(app, LB_PROBE_SUFFIX), "1", probeToken),
    "",
    `upstream ${upstream} {`,
    "    # nginx wants a server line; the balancer below picks every peer, so this one is never used.",
    `    server ${LIVE_PLACEHOLDER_PEER} max_fails=0;`,
    ...balancerBlock(app, 1),
    "    # After the balancer: keepalive wraps whichever peer it picked.",
    `    keepalive ${LB_UPSTREAM_KEEPALIVE};`,
    "}",
    "",
    ...serverHead(config),
    "",
    "    location / {",
    ...accessBlock(app, serializeLbState(config), 2),
    `        proxy_pass http://${upstream};`,
    ...callBlock("header_filter_by_lua_block", app, "lb.header()", 2),
    // One log block per location: the in-flight release, then the request counters (by backend).
    ...countingBlock("lb", app, 2, moduleCall(app, "lb.release(ngx.ctx)")),
    "    }",
    "}",
    "",
    ...controlServerBlock(app, controlSocket, 0),
    "",
  ].join("\n");
}
