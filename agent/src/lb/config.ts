import { createHash } from "node:crypto";
import { claimLines, claimsOf, validateVirtualHost, type VirtualHost } from "../nginx/virtual-host.js";
import { isIP } from "node:net";
import type { SwitchMode } from "../nginx/index.js";
import { isValidAppName } from "../nginx/site.js";
import { LbError } from "./errors.js";

export type LbBackendState = "up" | "drain" | "down";
export type LbGroup = "stable" | "canary";

/** One app host behind the front LB: its proxy's address and port. */
export interface LbBackend {
  /** Host name, for logs and for naming the host in waitDrained. Unique within a site. */
  host: string;
  address: string;
  port: number;
  /** Share of new requests within its group, relative to the other `up` backends (integer >= 0; 0 gets none). */
  weight: number;
  /** up: gets new requests; drain: none, in-flight ones finish; down: removed. */
  state: LbBackendState;
  /** Only read when the site has a canary. */
  group: LbGroup;
}

/** Pins chosen users to the canary: requests whose header or cookie `name` equals `value` (case-sensitive). */
export interface LbCanaryPin {
  kind: "header" | "cookie";
  name: string;
  value: string;
}

export interface LbCanary {
  /** Sticky cookie naming the group a user was sent to ("canary" or "stable"), e.g. cutover_canary. */
  cookie: string;
  /** Percent (0-100, at most two decimals) of NEW users (no valid sticky cookie) sent to the canary group. */
  weightPercent: number;
  pin?: LbCanaryPin;
}

/** The full desired state of one app's front LB site. */
export interface LbSiteConfig {
  app: string;
  listenAddress: string;
  listenPort: number;
  backends: LbBackend[];
  /** Absent: every `up` backend is in one pool and `group` is ignored. */
  canary?: LbCanary;
  switchMode: SwitchMode;
  /** Names, TLS, redirect, HTTP/2 on listenPort (nginx/virtual-host.ts); absent: the port is this site's alone, plain HTTP. Structure: a change reloads. */
  virtualHost?: VirtualHost;
}

/** The part of a site that live mode changes without a reload (everything but app, listen and mode). */
export type LbState = Pick<LbSiteConfig, "backends" | "canary">;

export const MAX_BACKENDS = 256;
export const MAX_BACKEND_WEIGHT = 10_000;
const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
/** nginx's `$cookie_<name>` variables only spell letters, digits and '_'. */
const COOKIE_NAME = /^[A-Za-z0-9_]{1,64}$/;
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;
/** Safe unquoted in a cookie, a header, a Lua string and (with '.' escaped) an nginx regex. */
const PIN_VALUE = /^[A-Za-z0-9._~-]{1,128}$/;

function isPort(port: unknown): port is number {
  return typeof port === "number" && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** `host:port` as nginx prints it in `$upstream_addr` (IPv6 in brackets): how backends are told apart. */
export function backendKey(backend: Pick<LbBackend, "address" | "port">): string {
  return isIP(backend.address) === 6 ? `[${backend.address}]:${backend.port}` : `${backend.address}:${backend.port}`;
}

/** A backend that gets new requests: `up` with a weight above 0. */
export function receivesNew(backend: LbBackend): boolean {
  return backend.state === "up" && backend.weight > 0;
}

/**
 * Throws ERR_LB_INVALID_SITE naming the field and what was expected. Everything that
 * reaches a config, a Lua string or a path is checked here: names are restricted to
 * characters that cannot break out of any of them.
 */
export function validateLbSite(config: LbSiteConfig): void {
  const bad = (field: string, expected: string, got: unknown): never => {
    throw new LbError(
      "ERR_LB_INVALID_SITE",
      `LB site ${JSON.stringify(config?.app)}: ${field} must be ${expected}, got ${JSON.stringify(got)}`,
    );
  };
  if (typeof config !== "object" || config === null) bad("the config", "an object", config);
  if (typeof config.app !== "string" || !isValidAppName(config.app)) {
    bad("app", "letters, digits, '_' or '-' (max 63, starting alphanumeric)", config.app);
  }
  if (config.switchMode !== "reload" && config.switchMode !== "live") bad("switchMode", '"reload" or "live"', config.switchMode);
  if (typeof config.listenAddress !== "string" || isIP(config.listenAddress) === 0) {
    bad("listenAddress", "an IP address", config.listenAddress);
  }
  if (!isPort(config.listenPort)) bad("listenPort", "an integer 1-65535", config.listenPort);
  if (!Array.isArray(config.backends) || config.backends.length === 0) {
    bad("backends", "a non-empty list (the LB needs somewhere to send users)", config.backends);
  }
  if (config.backends.length > MAX_BACKENDS) bad("backends", `at most ${MAX_BACKENDS} entries`, config.backends.length);
  const hosts = new Set<string>();
  const keys = new Set<string>();
  const listenKey = backendKey({ address: config.listenAddress, port: config.listenPort });
  config.backends.forEach((backend, i) => {
    const at = `backends[${i}]`;
    if (typeof backend !== "object" || backend === null) bad(at, "an object", backend);
    if (typeof backend.host !== "string" || !HOST_NAME.test(backend.host)) {
      bad(`${at}.host`, "a host name (letters, digits, '.', '_' or '-')", backend.host);
    }
    if (typeof backend.address !== "string" || isIP(backend.address) === 0) bad(`${at}.address`, "an IP address", backend.address);
    if (!isPort(backend.port)) bad(`${at}.port`, "an integer 1-65535", backend.port);
    if (typeof backend.weight !== "number" || !Number.isInteger(backend.weight) || backend.weight < 0 || backend.weight > MAX_BACKEND_WEIGHT) {
      bad(`${at}.weight`, `an integer 0-${MAX_BACKEND_WEIGHT}`, backend.weight);
    }
    if (backend.state !== "up" && backend.state !== "drain" && backend.state !== "down") {
      bad(`${at}.state`, '"up", "drain" or "down"', backend.state);
    }
    if (backend.group !== "stable" && backend.group !== "canary") bad(`${at}.group`, '"stable" or "canary"', backend.group);
    if (hosts.has(backend.host)) bad(`${at}.host`, "unique (a duplicate backend)", backend.host);
    const key = backendKey(backend);
    if (keys.has(key)) bad(`${at}`, "a distinct address:port (a duplicate backend)", key);
    if (key === listenKey) bad(`${at}`, "another address:port than the LB's own listen (it would proxy to itself)", key);
    hosts.add(backend.host);
    keys.add(key);
  });
  if (!config.backends.some(receivesNew)) {
    bad("backends", 'at least one "up" backend with a weight above 0 (users would have nowhere to go)', config.backends.map((b) => `${b.host}:${b.state}/${b.weight}`));
  }
  if (config.canary !== undefined) validateCanary(config.canary, bad);
  validateVirtualHost(config.virtualHost, (field, expected, got) => bad(`virtualHost.${field}`, expected, got));
}

function validateCanary(canary: LbCanary, bad: (field: string, expected: string, got: unknown) => never): void {
  if (typeof canary !== "object" || canary === null) bad("canary", "an object", canary);
  if (typeof canary.cookie !== "string" || !COOKIE_NAME.test(canary.cookie)) {
    bad("canary.cookie", "a cookie name of letters, digits or '_' (max 64)", canary.cookie);
  }
  const percent = canary.weightPercent;
  if (typeof percent !== "number" || !Number.isFinite(percent) || percent < 0 || percent > 100 || Math.abs(Math.round(percent * 100) - percent * 100) > 1e-9) {
    bad("canary.weightPercent", "a number 0-100 with at most two decimals", percent);
  }
  const pin = canary.pin;
  if (pin === undefined) return;
  if (typeof pin !== "object" || pin === null) bad("canary.pin", "an object", pin);
  if (pin.kind === "header") {
    if (typeof pin.name !== "string" || !HEADER_NAME.test(pin.name)) bad("canary.pin.name", "a header name of letters, digits or '-'", pin.name);
  } else if (pin.kind === "cookie") {
    if (typeof pin.name !== "string" || !COOKIE_NAME.test(pin.name)) bad("canary.pin.name", "a cookie name of letters, digits or '_'", pin.name);
  } else {
    bad("canary.pin.kind", '"header" or "cookie"', pin.kind);
  }
  if (typeof pin.value !== "string" || !PIN_VALUE.test(pin.value)) {
    bad("canary.pin.value", "1-128 of letters, digits, '.', '_', '~' or '-'", pin.value);
  }
}

/** A validated copy with a fixed key order and nothing extra: what is rendered, hashed and written back. */
export function normalizeLbSite(config: LbSiteConfig): LbSiteConfig {
  validateLbSite(config);
  const normalized: LbSiteConfig = {
    app: config.app,
    listenAddress: config.listenAddress,
    listenPort: config.listenPort,
    switchMode: config.switchMode,
    backends: config.backends.map((b) => ({ host: b.host, address: b.address, port: b.port, weight: b.weight, state: b.state, group: b.group })),
  };
  if (config.virtualHost !== undefined) {
    const { serverNames, defaultServer, tls, redirectHttpPort, http2 } = config.virtualHost;
    normalized.virtualHost = { serverNames: [...serverNames], defaultServer, http2, ...(tls && { tls: { ...tls } }), ...(redirectHttpPort !== undefined && { redirectHttpPort }) };
  }
  if (config.canary !== undefined) {
    const { cookie, weightPercent, pin } = config.canary;
    normalized.canary = { cookie, weightPercent, ...(pin !== undefined ? { pin: { kind: pin.kind, name: pin.name, value: pin.value } } : {}) };
  }
  return normalized;
}

/**
 * Short hash of the whole config. Every answer through the LB carries it (X-Cutover-Lb-Revision),
 * so a confirmation proves that this exact config serves, not just one that reaches the same backend.
 */
export function lbRevision(config: LbSiteConfig): string {
  return createHash("sha256").update(JSON.stringify(normalizeLbSite(config))).digest("hex").slice(0, 12);
}

/** Backends that get new requests, by group; a group without any falls back to the other. */
export interface LbPools {
  /** Without a canary: every backend that receives new requests. */
  all: LbBackend[];
  stable: LbBackend[];
  canary: LbBackend[];
}

export function lbPools(config: LbSiteConfig): LbPools {
  const all = config.backends.filter(receivesNew);
  return { all, stable: all.filter((b) => b.group === "stable"), canary: all.filter((b) => b.group === "canary") };
}

/**
 * The percent of new users that actually go to the canary: the configured one, or 0 / 100
 * when a group has no backend that receives new requests (never a 502 for an empty group).
 */
export function effectiveCanaryPercent(config: LbSiteConfig): number {
  const pools = lbPools(config);
  if (pools.canary.length === 0) return 0;
  if (pools.stable.length === 0) return 100;
  return config.canary?.weightPercent ?? 0;
}

/**
 * Backends a pinned request may reach: the canary group, or the stable one when the
 * canary has no backend that takes new requests.
 */
export function pinnedTargets(config: LbSiteConfig): LbBackend[] {
  const pools = lbPools(config);
  return pools.canary.length > 0 ? pools.canary : pools.stable;
}

// --- The state text: what live mode keeps in the shared dict and the Lua in the file falls back to.
//
//   revision <12 hex>
//   canary <cookie> <percent>
//   pin <header|cookie> <name> <value>
//   backend <host> <address> <port> <weight> <up|drain|down> <stable|canary>
//
// One record per line, fields separated by spaces; every field was validated to contain
// no whitespace, so the Lua side splits it with two gmatch loops.

export function serializeLbState(config: LbSiteConfig): string {
  const lines = [`revision ${lbRevision(config)}`];
  if (config.canary !== undefined) {
    lines.push(`canary ${config.canary.cookie} ${config.canary.weightPercent}`);
    const pin = config.canary.pin;
    if (pin !== undefined) lines.push(`pin ${pin.kind} ${pin.name} ${pin.value}`);
  }
  for (const b of config.backends) lines.push(`backend ${b.host} ${b.address} ${b.port} ${b.weight} ${b.state} ${b.group}`);
  return `${lines.join("\n")}\n`;
}

export interface ParsedLbState extends LbState {
  revision: string;
}

/** Reads serializeLbState's text back (from the dict, for re-adoption); null when it is not one. */
export function parseLbState(text: string): ParsedLbState | null {
  let revision: string | null = null;
  const backends: LbBackend[] = [];
  let canary: LbCanary | undefined;
  for (const line of text.split("\n")) {
    const fields = line.trim().split(/\s+/);
    const [kind, ...rest] = fields;
    if (kind === undefined || kind === "") continue;
    if (kind === "revision" && rest.length === 1) revision = rest[0]!;
    else if (kind === "canary" && rest.length === 2) canary = { cookie: rest[0]!, weightPercent: Number(rest[1]) };
    else if (kind === "pin" && rest.length === 3 && canary !== undefined) {
      canary.pin = { kind: rest[0] as LbCanaryPin["kind"], name: rest[1]!, value: rest[2]! };
    } else if (kind === "backend" && rest.length === 6) {
      const [host, address, port, weight, state, group] = rest as [string, string, string, string, string, string];
      backends.push({ host, address, port: Number(port), weight: Number(weight), state: state as LbBackendState, group: group as LbGroup });
    } else return null;
  }
  return revision === null ? null : { revision, backends, ...(canary !== undefined ? { canary } : {}) };
}

// --- The header of a rendered file: the whole config as one JSON line, read back after an agent restart.

export const LB_HEADER_BANNER = "# Written by cutover-agent (front load balancer); edits are overwritten on the next change.";
const HEADER_PREFIX = "# cutover-lb-site ";

export function renderLbHeader(config: LbSiteConfig): string {
  const normalized = normalizeLbSite(config);
  const claims = claimsOf(`lb ${normalized.app}`, normalized.listenAddress, normalized.listenPort, normalized.virtualHost);
  return [LB_HEADER_BANNER, `${HEADER_PREFIX}${JSON.stringify(normalized)}`, ...claimLines(claims)].join("\n");
}

/** The config a rendered LB site file was written from; null when the text is not one (or does not validate). */
export function parseLbHeader(text: string): LbSiteConfig | null {
  const line = text.split("\n", 3).find((l) => l.startsWith(HEADER_PREFIX));
  if (line === undefined) return null;
  try {
    return normalizeLbSite(JSON.parse(line.slice(HEADER_PREFIX.length)) as LbSiteConfig);
  } catch {
    return null;
  }
}
