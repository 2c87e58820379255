import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { isServerName } from "@cutover/spec";
import type { FileChange } from "./change.js";
import { NginxError } from "./errors.js";
import { listConfFiles, type NginxRunner } from "./runner.js";
import { hostPort, isPlainPath } from "./site.js";
import { readOrNull } from "./site-files.js";

/*
 * What a server block of ours (app site or LB site) answers on its port: names, TLS, the
 * plain-HTTP redirect, HTTP/2. Several sites share a port of a host when each names its
 * own; one without names has the port to itself. Each site file says what it claims in
 * `# cutover-listen` lines, so a change reads every other site's claims from the files
 * nginx loads (checkClaims refuses a clash before anything is written), and the port's
 * unclaimed names get a 404 server of ours (portDefaultFiles) unless a site is `default`.
 */

export interface VirtualHost {
  /** nginx server_name; [] = every name, the port is this site's alone. */
  serverNames: readonly string[];
  /** With serverNames: `listen … default_server`, the port's unclaimed names come here. */
  defaultServer: boolean;
  tls?: TlsFiles;
  /** With tls: this port's plain HTTP for serverNames gets a 301 to HTTPS. */
  redirectHttpPort?: number;
  http2: boolean;
}

export interface TlsFiles {
  certificate: string;
  key: string;
  /** sha256 over both files' bytes: in the rendered file, so a rotated certificate changes the site and reloads nginx. */
  fingerprint: string;
}

/** One listener a site claims: what its `# cutover-listen` line says. */
export interface PortClaim {
  /** Who claims it: "app geoip", "lb geoip". */
  site: string;
  address: string;
  port: number;
  names: readonly string[];
  tls: boolean;
  http2: boolean;
  defaultServer: boolean;
}

const CLAIM_PREFIX = "# cutover-listen ";
const PORT_DEFAULT_PREFIX = "# cutover-port-default ";
const FINGERPRINT = /^[0-9a-f]{64}$/;

/** The fingerprint of a certificate and key as they are on disk now. */
export function tlsFingerprint(certificate: string, key: string): string {
  return createHash("sha256").update(readFileSync(certificate)).update("\0").update(readFileSync(key)).digest("hex");
}

/** Throws `bad(field, expected, got)` for anything that must not reach nginx config. */
export function validateVirtualHost(vh: VirtualHost | undefined, bad: (field: string, expected: string, got: unknown) => never): void {
  if (vh === undefined) return;
  for (const name of vh.serverNames) if (!isServerName(name)) bad("serverNames", "host names (letters, digits, '-', '.', an optional leading '*.')", name);
  if (new Set(vh.serverNames).size !== vh.serverNames.length) bad("serverNames", "each name once", vh.serverNames);
  if (vh.defaultServer && vh.serverNames.length === 0) bad("defaultServer", "set only with serverNames", true);
  if (vh.tls) {
    if (!isPlainPath(vh.tls.certificate)) bad("tls.certificate", "an absolute path of letters, digits and ._/-", vh.tls.certificate);
    if (!isPlainPath(vh.tls.key)) bad("tls.key", "an absolute path of letters, digits and ._/-", vh.tls.key);
    if (!FINGERPRINT.test(vh.tls.fingerprint)) bad("tls.fingerprint", "a hex sha256", vh.tls.fingerprint);
  }
  const redirect = vh.redirectHttpPort;
  if (redirect !== undefined && (!vh.tls || !Number.isInteger(redirect) || redirect < 1 || redirect > 65535)) bad("redirectHttpPort", "a port, with tls", redirect);
  if (vh.http2 && !vh.tls) bad("http2", "set only with tls", true);
}

/** The listeners a site with `vh` on address:port claims: its own, and its redirect's. */
export function claimsOf(site: string, address: string, port: number, vh: VirtualHost | undefined): PortClaim[] {
  const names = vh?.serverNames ?? [];
  const own: PortClaim = { site, address, port, names, tls: Boolean(vh?.tls), http2: Boolean(vh?.http2), defaultServer: Boolean(vh?.defaultServer) };
  if (vh?.redirectHttpPort === undefined) return [own];
  return [own, { site, address, port: vh.redirectHttpPort, names, tls: false, http2: false, defaultServer: false }];
}

/** The `# cutover-listen` lines of a site file. */
export function claimLines(claims: readonly PortClaim[]): string[] {
  return claims.map(
    (c) =>
      `${CLAIM_PREFIX}site=${c.site.replace(" ", ":")} listen=${hostPort(c.address, c.port)} names=${c.names.join(",") || "*"} tls=${+c.tls} http2=${+c.http2} default=${+c.defaultServer}`,
  );
}

/** The claims a site file's text makes; [] for a file without `# cutover-listen` lines (written before them, or not ours). */
export function parseClaims(text: string): PortClaim[] {
  const claims: PortClaim[] = [];
  for (const line of text.split("\n", 12)) {
    if (!line.startsWith(CLAIM_PREFIX)) continue;
    const fields = new Map(line.slice(CLAIM_PREFIX.length).split(" ").map((pair) => pair.split("=", 2) as [string, string]));
    const listen = /^\[?([0-9a-fA-F.:]+)\]?:(\d+)$/.exec(fields.get("listen") ?? "");
    const site = fields.get("site");
    if (!listen || !site) continue;
    const names = fields.get("names");
    claims.push({
      site: site.replace(":", " "),
      address: listen[1]!,
      port: Number(listen[2]),
      names: names === "*" || !names ? [] : names.split(","),
      tls: fields.get("tls") === "1",
      http2: fields.get("http2") === "1",
      defaultServer: fields.get("default") === "1",
    });
  }
  return claims;
}

/** The http directory's site files, read: where app and LB sites live. */
function httpSiteFiles(runner: NginxRunner): Map<string, string> {
  const files = new Map<string, string>();
  for (const path of listConfFiles(httpDir(runner))) {
    const text = readOrNull(path);
    if (text !== null) files.set(path, text);
  }
  return files;
}

function httpDir(runner: NginxRunner): string {
  // An app name cannot hold a '.', so this probe name is no app's.
  return dirname(runner.sitePath("cutover.probe", "http"));
}

/**
 * Refuses (ERR_NGINX_VHOST_CLASH, naming both sites) claims that cannot share their ports:
 * two sites on a port where one has no names, a name two sites claim, TLS or HTTP/2 on a
 * port where another site has none (nginx would turn it on for both), two defaults.
 */
export function checkClaims(claims: readonly PortClaim[]): void {
  const byPort = new Map<string, PortClaim[]>();
  for (const claim of claims) {
    const key = hostPort(claim.address, claim.port);
    byPort.set(key, [...(byPort.get(key) ?? []), claim]);
  }
  for (const [listen, onPort] of byPort) {
    for (const [i, a] of onPort.entries()) {
      for (const b of onPort.slice(i + 1)) {
        if (a.site === b.site) continue;
        const clash = (why: string): never => {
          throw new NginxError("ERR_NGINX_VHOST_CLASH", `${a.site} and ${b.site} cannot share ${listen}: ${why}`);
        };
        if (a.names.length === 0 || b.names.length === 0) clash(`${a.names.length === 0 ? a.site : b.site} has no server_names, so it has the port to itself; give both server_names`);
        const both = a.names.filter((name) => b.names.includes(name));
        if (both.length > 0) clash(`both claim the server name${both.length > 1 ? "s" : ""} ${both.join(", ")}`);
        if (a.tls !== b.tls) clash(`${a.tls ? a.site : b.site} serves HTTPS there and ${a.tls ? b.site : a.site} plain HTTP`);
        if (a.http2 !== b.http2) clash(`${a.http2 ? a.site : b.site} offers HTTP/2 there and ${a.http2 ? b.site : a.site} does not; nginx sets it for the port`);
        if (a.defaultServer && b.defaultServer) clash("both are the port's default");
      }
    }
  }
}

/**
 * Checks `claims` of `site` against every other site file's, and returns the port-default
 * files that must change with it (FileChange: written, rewritten or removed) so that every
 * port with named servers and no default one answers unclaimed names with a 404 (HTTPS: a
 * refused handshake). `next` null: the site goes away.
 */
export function planClaims(runner: NginxRunner, site: string, next: readonly PortClaim[] | null, ownPaths: readonly string[]): FileChange[] {
  const files = httpSiteFiles(runner);
  const others = [...files].filter(([path]) => !ownPaths.includes(path) && !isPortDefaultPath(path)).flatMap(([, text]) => parseClaims(text));
  const mine = next ?? [];
  checkClaims([...others.filter((claim) => claim.site !== site), ...mine]);
  const all = [...others.filter((claim) => claim.site !== site), ...mine];
  const wanted = new Map<string, string>();
  for (const claim of all) {
    const onPort = all.filter((c) => c.address === claim.address && c.port === claim.port);
    if (onPort.some((c) => c.names.length === 0 || c.defaultServer)) continue;
    wanted.set(portDefaultPath(runner, claim.address, claim.port), renderPortDefault(claim));
  }
  const changes: FileChange[] = [];
  for (const [path, content] of wanted) {
    const previous = files.get(path) ?? null;
    if (previous !== content) changes.push({ path, next: content, previous });
  }
  for (const [path, previous] of files) if (isPortDefaultPath(path) && !wanted.has(path)) changes.push({ path, next: null, previous });
  return changes;
}

function portDefaultPath(runner: NginxRunner, address: string, port: number): string {
  // Never an app's file: app names hold no '.'. The system runner names its own cutover-*.conf.
  const prefix = basename(runner.sitePath("x", "http")).startsWith("cutover-") ? "cutover.port-" : "port.";
  return join(httpDir(runner), `${prefix}${address.replaceAll(":", "_")}-${port}.conf`);
}

function isPortDefaultPath(path: string): boolean {
  const name = basename(path);
  return name.startsWith("port.") || name.startsWith("cutover.port-");
}

/** The 404 server for a port's unclaimed names; with TLS, the handshake is refused (there is no certificate for them). */
function renderPortDefault(claim: PortClaim): string {
  const listen = hostPort(claim.address, claim.port);
  return [
    "# Written by cutover-agent; edits are overwritten on the next switch.",
    `${PORT_DEFAULT_PREFIX}listen=${listen}: the names no site on this port claims`,
    "server {",
    `    listen ${listen}${claim.tls ? " ssl" : ""}${claim.http2 ? " http2" : ""} default_server;`,
    ...(claim.tls ? ["    ssl_reject_handshake on;"] : []),
    "    return 404;",
    "}",
    "",
  ].join("\n");
}

/** The head of a server block on address:port: listen (ssl, http2, default_server), server_name, the TLS files. */
export function serverHeadLines(address: string, port: number, vh: VirtualHost | undefined): string[] {
  const flags = `${vh?.tls ? " ssl" : ""}${vh?.http2 ? " http2" : ""}${vh?.defaultServer ? " default_server" : ""}`;
  const lines = [`    listen ${hostPort(address, port)}${flags};`];
  if (vh && vh.serverNames.length > 0) lines.push(`    server_name ${vh.serverNames.join(" ")};`);
  if (vh?.tls) {
    lines.push(
      `    # TLS files sha256 ${vh.tls.fingerprint}`,
      `    ssl_certificate ${vh.tls.certificate};`,
      `    ssl_certificate_key ${vh.tls.key};`,
      "    ssl_protocols TLSv1.2 TLSv1.3;",
      "    ssl_session_cache shared:cutover_tls:1m;",
    );
  }
  return lines;
}

/** The redirect server of a site with redirectHttpPort: plain HTTP for its names → 301 to the same URL on HTTPS. */
export function redirectServerLines(address: string, httpsPort: number, vh: VirtualHost | undefined): string[] {
  if (vh?.redirectHttpPort === undefined) return [];
  const target = httpsPort === 443 ? "https://$host$request_uri" : `https://$host:${httpsPort}$request_uri`;
  return [
    "",
    "server {",
    `    listen ${hostPort(address, vh.redirectHttpPort)};`,
    ...(vh.serverNames.length > 0 ? [`    server_name ${vh.serverNames.join(" ")};`] : []),
    `    return 301 ${target};`,
    "}",
  ];
}
