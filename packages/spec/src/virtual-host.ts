/**
 * The fields an nginx server block of ours shares, app proxy or front load balancer:
 * the names it answers to on its port (`server_names`, several apps on one port), TLS,
 * the plain-HTTP redirect and HTTP/2. Read for `proxy` and for `lb` alike.
 */
import { describe, openSection, type Section } from "./checker.js";
import type { SecretRef, TlsFile, TlsSpec, VirtualHostSpec } from "./types.js";

export const VIRTUAL_HOST_KEYS = ["server_names", "default", "tls", "redirect_http", "http2"] as const;
const TLS_KEYS = ["certificate", "key"] as const;

/** At most this many names per server block: each is a line of the host's nginx config. */
export const MAX_SERVER_NAMES = 32;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * A host name nginx matches exactly (`geoip.example.com`), or a leading wildcard
 * (`*.example.com`): lower-case DNS labels, at most 253 characters. Never a regex
 * (`~…`) or a catch-all (`_`, `""`): the agent renders them into config, and a port's
 * unclaimed names are the `default` app's or a 404.
 */
export function isServerName(name: unknown): name is string {
  if (typeof name !== "string" || name.length === 0 || name.length > 253) return false;
  const labels = (name.startsWith("*.") ? name.slice(2) : name).split(".");
  return labels.length >= 1 && labels.every((label) => LABEL.test(label));
}

/** A certificate or key path on a host: absolute, plain characters (it goes into nginx config as written), no `..`. */
export function isTlsPath(path: unknown): path is string {
  return typeof path === "string" && /^\/[A-Za-z0-9._/-]+$/.test(path) && !path.split("/").includes("..");
}

const SERVER_NAME_RULE = "a host name of lower-case letters, digits, '-' and '.', optionally starting with \"*.\", like geoip.example.com";
const TLS_PATH_RULE = "an absolute path on each host (letters, digits, ._/-), like /etc/ssl/geoip.pem";
const TLS_FILE_RULE = `${TLS_PATH_RULE}, or { secret: NAME }`;
const TLS_SHAPE = "a mapping with the certificate and key, like { certificate: /etc/ssl/geoip.pem, key: /etc/ssl/private/geoip.key }";

export interface VirtualHostOptions {
  /** Why the section can have none of the fields (a tcp proxy). */
  plainOnly?: string;
  /** Why its TLS files cannot be secrets (lb: the LB hosts' commands carry no secrets). */
  pathsOnly?: string;
}

/** Reads the virtual-host fields of `section` (proxy or lb) listening on `listen`; every one is optional. */
export function readVirtualHost(section: Section, listen: number, options: VirtualHostOptions = {}): VirtualHostSpec {
  const { plainOnly } = options;
  if (plainOnly !== undefined) {
    for (const key of VIRTUAL_HOST_KEYS) if (section.has(key)) section.c.fail(section.at(key), `nothing here: ${key} ${plainOnly}`, describe(section.value(key)));
    return {};
  }
  const serverNames = readServerNames(section);
  const isDefault = section.read("default", "true or false", (v) => (typeof v === "boolean" ? v : undefined));
  if (isDefault !== undefined && serverNames === undefined) {
    section.c.fail(section.at("default"), "nothing here without server_names: an app without names already answers every name on its port", String(isDefault));
  }
  const tls = section.has("tls") ? readTls(section, options.pathsOnly) : undefined;
  const redirect = section.read("redirect_http", "true (port 80) or the port whose plain HTTP is redirected to https", (v) =>
    v === true ? 80 : v === false ? 0 : Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? (v as number) : undefined,
  );
  if (redirect && !section.has("tls")) section.c.fail(section.at("redirect_http"), "nothing here without tls: it redirects plain HTTP to this port's HTTPS", String(section.value("redirect_http")));
  else if (redirect && redirect === listen) section.c.fail(section.at("redirect_http"), `a port other than listen (${listen}), which serves HTTPS`, String(redirect));
  const http2 = section.read("http2", "true or false", (v) => (typeof v === "boolean" ? v : undefined));
  if (http2 && !section.has("tls")) section.c.fail(section.at("http2"), "nothing here without tls: HTTP/2 is offered to browsers through TLS", "true");
  return {
    ...(serverNames && { serverNames }),
    ...(isDefault && { defaultServer: true }),
    ...(tls && { tls }),
    ...(redirect && { redirectHttp: redirect }),
    ...(http2 && { http2: true }),
  };
}

function readServerNames(section: Section): string[] | undefined {
  const value = section.value("server_names");
  if (value === undefined) return undefined;
  const at = section.at("server_names");
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SERVER_NAMES) {
    section.c.wrong(at, `a list of 1..${MAX_SERVER_NAMES} host names, like [geoip.example.com]`, value);
    return undefined;
  }
  const names: string[] = [];
  for (const [i, raw] of value.entries()) {
    const name = typeof raw === "string" ? raw.toLowerCase() : raw;
    if (!isServerName(name)) section.c.fail(`${at}[${i}]`, SERVER_NAME_RULE, describe(raw));
    else if (names.includes(name)) section.c.fail(`${at}[${i}]`, `a name not already in the list (${name} is claimed twice)`, describe(raw));
    else names.push(name);
  }
  return names;
}

function readTls(section: Section, pathsOnly: string | undefined): TlsSpec | undefined {
  const tls = openSection(section.c, section.at("tls"), section.value("tls"), TLS_KEYS, TLS_SHAPE);
  if (!tls) return undefined;
  const certificate = readTlsFile(tls, "certificate", pathsOnly);
  const key = readTlsFile(tls, "key", pathsOnly);
  return certificate && key ? { certificate, key } : undefined;
}

function readTlsFile(tls: Section, key: "certificate" | "key", pathsOnly: string | undefined): TlsFile | undefined {
  const value = tls.value(key);
  const rule = pathsOnly === undefined ? TLS_FILE_RULE : `${TLS_PATH_RULE} (${pathsOnly})`;
  if (value === undefined) {
    tls.c.wrong(tls.at(key), rule, value);
    return undefined;
  }
  if (pathsOnly === undefined && typeof value === "object" && value !== null && !Array.isArray(value)) {
    const ref = value as Record<string, unknown>;
    const keys = Object.keys(ref);
    if (keys.length === 1 && typeof ref.secret === "string" && ENV_NAME.test(ref.secret)) return { secret: ref.secret } satisfies SecretRef;
  } else if (isTlsPath(value)) {
    return value;
  }
  tls.c.wrong(tls.at(key), rule, value);
  return undefined;
}
