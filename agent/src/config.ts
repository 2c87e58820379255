import { existsSync, readFileSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { parse } from "yaml";
import { parseDuration } from "@cutover/spec";
import { isFingerprint, isLoopbackHost, isValidLabel, isValidName, LABEL_RULE, NAME_RULE } from "@cutover/protocol";
import type { RootApps } from "./process/index.js";

/** Agent settings after flags, config file and defaults are merged and checked. */
export interface AgentConfig {
  /** ws(s)://host:port/v1/agent of every coordinator configured, in the order given (one, or the members of an HA fleet). */
  coordinatorUrls: string[];
  /** What a coordinator URL the agent learns from a Welcome must satisfy, as the configured ones did. */
  coordinatorRules: CoordinatorRules;
  enrollmentToken: string | undefined;
  stateDir: string;
  name: string;
  labels: Record<string, string>;
  /** Address this host's proxy listens on and load balancers use. */
  address: string;
  reconnectBaseMs: number;
  reconnectCapMs: number;
  handshakeTimeoutMs: number;
  /** `system`: the host's nginx (conf.d); `managed`: an nginx master of the agent's own in its state dir. */
  nginxMode: "managed" | "system";
  /** `live` (Lua shared dict, no reload) or `reload`; `auto` picks live when the Lua module is there. */
  switchMode: "reload" | "live" | "auto";
  /** The coordinator's TLS certificate fingerprint (sha256:..), pinned for wss://. */
  coordinatorFingerprint: string | undefined;
  /** host:port for the opt-in Prometheus endpoint; undefined: off. */
  metricsListen: { host: string; port: number } | undefined;
  /** `refuse` (default): an app that would run as root (no run.user while the agent is root, or a uid-0 user) is not started. */
  rootApps: RootApps;
}

/** Raw settings as flags or the config file give them (config file keys are snake_case). */
export interface AgentSettings {
  config?: string;
  /** One URL or several, comma-separated (`--coordinator`), or a YAML list (the config file). */
  coordinator?: string | string[];
  token?: string;
  stateDir?: string;
  name?: string;
  labels?: string | Record<string, string>;
  address?: string;
  maxBackoff?: string;
  nginx?: string;
  switch?: string;
  metricsListen?: string;
  coordinatorFingerprint?: string;
  allowPlain?: boolean;
  allowRootApps?: boolean;
}

export const DEFAULT_STATE_DIR = "/var/lib/cutover/agent";
export const DEFAULT_CONFIG_PATH = "/etc/cutover/agent.yaml";
const RECONNECT_BASE_MS = 250;
const DEFAULT_MAX_BACKOFF = "15s";
const HANDSHAKE_TIMEOUT_MS = 10_000;

export class ConfigError extends Error {
  readonly code = "ERR_AGENT_CONFIG";
}

/** What every coordinator URL must satisfy: the configured ones, and the members a signed Welcome lists. */
export interface CoordinatorRules {
  /** `--allow-plain`: plain ws:// to a host that is not loopback. */
  allowPlain: boolean;
  /** `--coordinator-fingerprint` was given: it pins a TLS certificate, so plain ws:// is refused. */
  fingerprintFlag: boolean;
}

/** The agent endpoint `url` names, when the rules let the agent talk to it; ConfigError says why not otherwise. */
export function coordinatorEndpoint(url: string, rules: CoordinatorRules): string {
  const endpoint = agentEndpoint(url);
  if (!endpoint.startsWith("ws:")) return endpoint;
  const host = new URL(endpoint).hostname.replace(/^\[|\]$/g, "");
  if (!isLoopbackHost(host) && !rules.allowPlain) {
    throw new ConfigError(`refusing plain ws:// to ${host}: use https:// (wss) with --coordinator-fingerprint, or --allow-plain on a trusted network`);
  }
  // Only the flag: install.sh records a config-file pin ahead of a move to https and says it is not checked yet.
  if (rules.fingerprintFlag) {
    throw new ConfigError(`--coordinator-fingerprint pins a TLS certificate, but ${url} is plain (ws://, no TLS) and has no certificate to check: use https:// (wss, \`cutover server --tls\`) or drop the fingerprint`);
  }
  return endpoint;
}

/** The coordinators' agent endpoints from `--coordinator A,B` or `coordinator:` (a URL, a comma string or a list), each checked, duplicates dropped. */
export function coordinatorEndpoints(value: string | string[], rules: CoordinatorRules): string[] {
  const urls = (typeof value === "string" ? value.split(",") : value).map((url) => url.trim()).filter(Boolean);
  if (urls.length === 0) throw new ConfigError("no coordinator: pass --coordinator URL (or URL1,URL2,... for several) or set `coordinator:` in the config file");
  return [...new Set(urls.map((url) => coordinatorEndpoint(url, rules)))];
}

/** Accepts http(s):// (the address operators know) or ws(s)://, and points it at the agent endpoint. */
export function agentEndpoint(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`coordinator "${url}" is not a URL (e.g. wss://coordinator.example:7400)`);
  }
  const scheme = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" }[parsed.protocol];
  if (!scheme) throw new ConfigError(`coordinator URL must start with ws://, wss://, http:// or https://, got "${url}"`);
  parsed.protocol = scheme;
  if (parsed.pathname === "/" || parsed.pathname === "") parsed.pathname = "/v1/agent";
  return parsed.toString();
}

export function parseLabels(text: string | Record<string, string>): Record<string, string> {
  const entries = typeof text === "string"
    ? text.split(",").map((s) => s.trim()).filter(Boolean).map((pair) => {
        const at = pair.indexOf("=");
        if (at <= 0) throw new ConfigError(`label "${pair}" must be key=value`);
        return [pair.slice(0, at), pair.slice(at + 1)] as [string, string];
      })
    : Object.entries(text).map(([k, v]) => [k, String(v)] as [string, string]);
  for (const [key, value] of entries) {
    if (!isValidLabel(key, value)) throw new ConfigError(`label ${key}=${value} is invalid: ${LABEL_RULE}`);
  }
  return Object.fromEntries(entries);
}

/** The first non-internal IPv4 address, else loopback. */
export function primaryAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

function readConfigFile(path: string, required: boolean): AgentSettings {
  if (!existsSync(path)) {
    if (required) throw new ConfigError(`config file ${path} does not exist`);
    return {};
  }
  let raw: Record<string, unknown>;
  try {
    raw = (parse(readFileSync(path, "utf8")) ?? {}) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(`${path}: not valid YAML: ${(error as Error).message}`);
  }
  const known = ["coordinator", "token", "state_dir", "name", "labels", "address", "max_backoff", "nginx", "switch", "metrics_listen", "coordinator_fingerprint", "allow_plain", "allow_root_apps"];
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) throw new ConfigError(`${path}: unknown key "${key}" (known: ${known.join(", ")})`);
  }
  const coordinator = raw.coordinator;
  const isList = Array.isArray(coordinator) && coordinator.every((url) => typeof url === "string");
  if (coordinator !== undefined && coordinator !== null && typeof coordinator !== "string" && !isList) {
    throw new ConfigError(`${path}: coordinator must be a URL, URLs separated by commas, or a list of URLs, got ${JSON.stringify(coordinator)}`);
  }
  return {
    coordinator: (coordinator ?? undefined) as AgentSettings["coordinator"],
    token: raw.token as string | undefined,
    stateDir: raw.state_dir as string | undefined,
    name: raw.name as string | undefined,
    labels: raw.labels as AgentSettings["labels"],
    address: raw.address as string | undefined,
    maxBackoff: raw.max_backoff as string | undefined,
    nginx: raw.nginx as string | undefined,
    switch: raw.switch as string | undefined,
    metricsListen: raw.metrics_listen as string | undefined,
    coordinatorFingerprint: raw.coordinator_fingerprint as string | undefined,
    allowPlain: raw.allow_plain === true ? true : undefined,
    allowRootApps: readFlag(raw, "allow_root_apps", path),
  };
}

/** A true/false key; anything else (`yes`, "true") is refused rather than guessed. */
function readFlag(raw: Record<string, unknown>, key: string, path: string): boolean | undefined {
  const value = raw[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") throw new ConfigError(`${path}: ${key} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

/** Flags win over the config file, which wins over defaults. */
export function resolveAgentConfig(flags: AgentSettings): AgentConfig {
  const file = readConfigFile(flags.config ?? DEFAULT_CONFIG_PATH, flags.config !== undefined);
  const pick = <K extends keyof AgentSettings>(key: K) => flags[key] ?? file[key];
  const fingerprint = pick("coordinatorFingerprint");
  if (fingerprint !== undefined && !isFingerprint(fingerprint)) {
    throw new ConfigError(`coordinator fingerprint must be the sha256 \`cutover server --tls\` prints (sha256:AB:CD:...), got "${fingerprint}"`);
  }
  const coordinatorRules: CoordinatorRules = { allowPlain: pick("allowPlain") === true, fingerprintFlag: flags.coordinatorFingerprint !== undefined };
  const coordinatorUrls = coordinatorEndpoints(pick("coordinator") ?? [], coordinatorRules);
  const name = (pick("name") ?? hostname()).toLowerCase();
  if (!isValidName(name)) throw new ConfigError(`name "${name}" is invalid: ${NAME_RULE}`);
  let reconnectCapMs: number;
  try {
    reconnectCapMs = parseDuration(pick("maxBackoff") ?? DEFAULT_MAX_BACKOFF);
  } catch (error) {
    throw new ConfigError(`max backoff: ${(error as Error).message}`);
  }
  const nginxMode = pick("nginx") ?? "system";
  if (nginxMode !== "managed" && nginxMode !== "system") throw new ConfigError(`nginx must be "managed" or "system", got "${nginxMode}"`);
  const switchMode = pick("switch") ?? "auto";
  if (switchMode !== "reload" && switchMode !== "live" && switchMode !== "auto") throw new ConfigError(`switch must be "reload", "live" or "auto", got "${switchMode}"`);
  const metricsText = pick("metricsListen");
  const metricsMatch = metricsText === undefined ? null : /^(.+):(\d+)$/.exec(metricsText);
  if (metricsText !== undefined && (!metricsMatch || Number(metricsMatch[2]) > 65535)) {
    throw new ConfigError(`metrics listen must be HOST:PORT (e.g. 127.0.0.1:9464), got "${metricsText}"`);
  }
  return {
    coordinatorFingerprint: fingerprint,
    nginxMode,
    switchMode,
    metricsListen: metricsMatch ? { host: metricsMatch[1]!, port: Number(metricsMatch[2]) } : undefined,
    coordinatorUrls,
    coordinatorRules,
    enrollmentToken: pick("token"),
    stateDir: pick("stateDir") ?? DEFAULT_STATE_DIR,
    name,
    labels: parseLabels(pick("labels") ?? {}),
    address: pick("address") ?? primaryAddress(),
    reconnectBaseMs: Math.min(RECONNECT_BASE_MS, reconnectCapMs),
    reconnectCapMs,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    rootApps: pick("allowRootApps") ? "allow" : "refuse",
  };
}
