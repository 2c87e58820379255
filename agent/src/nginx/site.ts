import { isIP } from "node:net";
import { checkProxyDirective } from "@cutover/spec";
import { NginxError } from "./errors.js";
import { claimLines, claimsOf, validateVirtualHost, type VirtualHost } from "./virtual-host.js";

export type SiteProtocol = "http" | "tcp";
export type SwitchMode = "reload" | "live";

/** Everything needed to render one app's proxy config on one host. */
export interface SiteConfig {
  /** App name; becomes part of file names, the upstream name and the live-port key. */
  app: string;
  protocol: SiteProtocol;
  /** Address and port nginx listens on for this app (the host's address, e.g. 127.0.0.11:80). */
  listenAddress: string;
  listenPort: number;
  /** Address the app instances listen on (both colors share it). */
  upstreamAddress: string;
  /** Port of the color that should receive traffic (it passed its health gate). */
  livePort: number;
  switchMode: SwitchMode;
  /** Directives from the spec's proxy.directives, placed inside the server block, one per entry; `;` optional; only allowed names. */
  extraDirectives?: string[];
  /** Reload mode, http: the request log the agent counts (NginxRunner.requestLogPath); absent, requests are not counted. */
  requestLog?: string;
  /** http: names, TLS, redirect, HTTP/2 (virtual-host.ts); absent: the port is this site's alone, plain HTTP. */
  virtualHost?: VirtualHost;
}

/** What the first lines of a rendered site file say about it. */
export interface SiteHeader {
  app: string;
  protocol: SiteProtocol;
  mode: SwitchMode;
  livePort: number;
}

export const HEADER_BANNER = "# Written by cutover-agent; edits are overwritten on the next switch.";
const HEADER_PREFIX = "# cutover-site";
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export function isValidAppName(app: string): boolean {
  return APP_NAME.test(app);
}

function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** Throws ERR_NGINX_INVALID_SITE naming the field; nothing from the network reaches a path or a config unchecked. */
export function validateSite(site: SiteConfig): void {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new NginxError(
      "ERR_NGINX_INVALID_SITE",
      `site ${JSON.stringify(site.app)}: ${field} must be ${expected}, got ${JSON.stringify(got)}`,
    );
  };
  if (!isValidAppName(site.app)) bad("app", "letters, digits, '_' or '-' (max 63, starting alphanumeric)", site.app);
  if (site.protocol !== "http" && site.protocol !== "tcp") bad("protocol", '"http" or "tcp"', site.protocol);
  if (site.switchMode !== "reload" && site.switchMode !== "live") bad("switchMode", '"reload" or "live"', site.switchMode);
  if (isIP(site.listenAddress) === 0) bad("listenAddress", "an IP address", site.listenAddress);
  if (isIP(site.upstreamAddress) === 0) bad("upstreamAddress", "an IP address", site.upstreamAddress);
  if (!isPort(site.listenPort)) bad("listenPort", "an integer 1-65535", site.listenPort);
  if (!isPort(site.livePort)) bad("livePort", "an integer 1-65535", site.livePort);
  for (const [i, directive] of (site.extraDirectives ?? []).entries()) {
    const checked = checkProxyDirective(directive);
    if (!checked.ok) bad(`extraDirectives[${i}]`, `an allowed nginx directive (${checked.why})`, directive);
  }
  if (site.requestLog !== undefined && !isPlainPath(site.requestLog)) bad("requestLog", "an absolute path of letters, digits and ._/-", site.requestLog);
  if (site.virtualHost !== undefined && site.protocol !== "http") bad("virtualHost", "absent for a tcp site", site.virtualHost);
  validateVirtualHost(site.virtualHost, (field, expected, got) => bad(`virtualHost.${field}`, expected, got));
}

/** The Host (and TLS server name) the agent's own probes of a site send: its first name (a wildcard's with a label filled in), else its address. */
export function probeHostName(site: Pick<SiteConfig, "listenAddress" | "listenPort" | "virtualHost">): string {
  const name = site.virtualHost?.serverNames[0];
  if (name === undefined) return hostPort(site.listenAddress, site.listenPort);
  return name.startsWith("*.") ? `cutover-probe.${name.slice(2)}` : name;
}

/** The listeners the site claims on its host (virtual-host.ts): none for tcp, whose ports nginx's stream binds alone. */
export function siteClaims(site: SiteConfig) {
  return site.protocol === "http" ? claimsOf(`app ${site.app}`, site.listenAddress, site.listenPort, site.virtualHost) : [];
}

/** A path that goes into nginx config as it is: absolute, no space, quote, `;`, `$` or brace. */
export function isPlainPath(path: string): boolean {
  return /^\/[A-Za-z0-9._/-]+$/.test(path) && !path.includes("..");
}

/** `host:port` as nginx prints it in `$upstream_addr` (IPv6 in brackets). */
export function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The `$upstream_addr` a request served by the site's live color reports. */
export function expectedUpstream(site: Pick<SiteConfig, "upstreamAddress" | "livePort">): string {
  return hostPort(site.upstreamAddress, site.livePort);
}

export function upstreamName(app: string): string {
  return `cutover_${app}`;
}

export function renderHeader(site: SiteConfig): string {
  return [
    HEADER_BANNER,
    `${HEADER_PREFIX} app=${site.app} protocol=${site.protocol} mode=${site.switchMode} live-port=${site.livePort}`,
    ...claimLines(siteClaims(site)),
  ].join("\n");
}

/** Reads the header written by renderSite; null when the text is not a cutover site file. */
export function parseSiteHeader(text: string): SiteHeader | null {
  const line = text.split("\n", 3).find((l) => l.startsWith(`${HEADER_PREFIX} `));
  if (!line) return null;
  const fields = new Map(
    line
      .slice(HEADER_PREFIX.length)
      .trim()
      .split(/\s+/)
      .map((pair) => pair.split("=", 2) as [string, string | undefined]),
  );
  const app = fields.get("app");
  const protocol = fields.get("protocol");
  const mode = fields.get("mode");
  const livePort = Number(fields.get("live-port"));
  if (!app || (protocol !== "http" && protocol !== "tcp") || (mode !== "reload" && mode !== "live") || !isPort(livePort)) {
    return null;
  }
  return { app, protocol, mode, livePort };
}
