import { NginxError } from "./errors.js";
import { DROP_PROBE_HEADER, probeOnlyMap } from "./probe-token.js";
import { balancerBlock } from "./lua.js";
import { countingBlock, requestLogFormat, requestLogLine } from "./request-counting.js";
import { hostPort, renderHeader, upstreamName, validateSite, type SiteConfig } from "./site.js";
import { redirectServerLines, serverHeadLines } from "./virtual-host.js";

/** Idle connections each worker keeps to the live color, so requests skip the TCP handshake. */
export const UPSTREAM_KEEPALIVE = 32;
/** Response header naming the upstream that served a request; the agent confirms switches with it. Sent to the agent's probes only (probe-token.ts). */
export const UPSTREAM_HEADER = "X-Cutover-Upstream";

/** The variable holding an app's UPSTREAM_HEADER value: unique per app (its name in hex, as nginx variable names allow no '-'). */
function upstreamShownVariable(app: string): string {
  return `$cutover_upstream_${Buffer.from(app).toString("hex")}`;
}

/**
 * How an http server block of ours passes a request on, app site or load balancer:
 * HTTP/1.1 with the Connection header cleared (kept-alive upstream connections), and the
 * user's Host, address and scheme.
 */
export const PROXY_REQUEST_LINES: readonly string[] = [
  "    proxy_http_version 1.1;",
  '    proxy_set_header Connection "";',
  "    proxy_set_header Host $host;",
  "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
  "    proxy_set_header X-Forwarded-Proto $scheme;",
];

/** proxy.directives, checked by validateSite: one line each, `;` added where the spec left it out. */
function directiveLines(directives: readonly string[] | undefined): string[] {
  return (directives ?? []).map((raw) => `    ${raw.trim().replace(/;$/, "")};`);
}

/**
 * One app's proxy config: an http server (http context) or a stream server (stream
 * context). The first two lines are a header that `parseSiteHeader` reads back, so the
 * file alone says which color a restarted nginx would serve.
 */
export function renderSite(site: SiteConfig, probeToken: string): string {
  validateSite(site);
  return site.protocol === "http" ? renderHttpSite(site, probeToken) : renderTcpSite(site);
}

/** `probeToken`: the host's; only requests carrying it are told which upstream served (probe-token.ts). */
function renderHttpSite(site: SiteConfig, probeToken: string): string {
  const upstream = upstreamName(site.app);
  const peer = hostPort(site.upstreamAddress, site.livePort);
  const shown = upstreamShownVariable(site.app);
  const lines = [renderHeader(site), ...probeOnlyMap(shown, "$upstream_addr", probeToken), "", `upstream ${upstream} {`];
  if (site.switchMode === "live") {
    lines.push(
      "    # Fallback peer. The balancer below takes the port from the live dict per request",
      "    # and uses this one when the dict has no entry (e.g. after an nginx restart).",
      `    server ${peer} max_fails=0;`,
      ...balancerBlock(site.app, site.upstreamAddress, site.livePort, 1),
      "    # After the balancer: keepalive wraps whichever peer it picked.",
    );
  } else {
    lines.push(`    server ${peer} max_fails=0;`);
  }
  lines.push(
    `    keepalive ${UPSTREAM_KEEPALIVE};`,
    "}",
    "",
    ...(site.switchMode === "reload" && site.requestLog ? [...requestLogFormat("app", site.app), ""] : []),
    "server {",
    ...serverHeadLines(site.listenAddress, site.listenPort, site.virtualHost),
    "",
    ...PROXY_REQUEST_LINES,
    DROP_PROBE_HEADER,
    `    add_header ${UPSTREAM_HEADER} ${shown} always;`,
    "",
    "    location / {",
    `        proxy_pass http://${upstream};`,
    "    }",
  );
  // Live mode has the Lua module: the requests are counted here, by the color's port that answered;
  // in reload mode they go to a request log the agent counts (when the runner keeps one).
  if (site.switchMode === "live") lines.push("", ...countingBlock("app", site.app, 1));
  else if (site.requestLog) lines.push("", ...requestLogLine("app", site.app, site.requestLog, 1));
  const extra = directiveLines(site.extraDirectives);
  if (extra.length > 0) lines.push("", ...extra);
  lines.push("}", ...redirectServerLines(site.listenAddress, site.listenPort, site.virtualHost), "");
  return lines.join("\n");
}

function renderTcpSite(site: SiteConfig): string {
  if (site.switchMode === "live") {
    throw new NginxError(
      "ERR_NGINX_LIVE_UNSUPPORTED",
      `site ${site.app}: live switching is http-only (it needs the http Lua module); use switchMode "reload" for tcp`,
    );
  }
  const upstream = upstreamName(site.app);
  const lines = [
    renderHeader(site),
    `upstream ${upstream} {`,
    `    server ${hostPort(site.upstreamAddress, site.livePort)} max_fails=0;`,
    "}",
    "",
    "server {",
    `    listen ${hostPort(site.listenAddress, site.listenPort)};`,
    `    proxy_pass ${upstream};`,
  ];
  const extra = directiveLines(site.extraDirectives);
  if (extra.length > 0) lines.push("", ...extra);
  lines.push("}", "");
  return lines.join("\n");
}
