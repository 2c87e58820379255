import { isValidName, type cutover } from "@cutover/protocol";
import { isServerName, isTlsPath } from "@cutover/spec";
import type { HealthCheck } from "../health/index.js";
import type { Color } from "./app-state.js";
import { DeployError } from "./errors.js";

type WireDefinition = cutover.v1.AppDefinition.$Properties;

/** How a color's health is judged: the spec's health section with the product's defaults filled in. */
export interface HealthGate {
  check: HealthCheck;
  /** Time between the gate's checks of a new instance. */
  intervalMs: number;
  /** Time between live checks once the instance is in service; DEFAULT_LIVE_CHECK_INTERVAL_MS when the wire has none. */
  liveIntervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  deadlineMs: number;
}

/**
 * An app as this host runs it. A Deploy's `AppDefinition` (proto3: every field
 * optional on the wire) is checked once, where the command enters
 * (`appDefinitionOf`); past that edge the transaction, the supervisors and the
 * nginx site read fields that are there.
 */
export interface AppDefinition {
  name: string;
  run: {
    command: string[];
    env: Record<string, string>;
    /** Variable → the app secret whose value it gets: only the reference (the values are in SecretVault, never saved). */
    secretEnv: Record<string, string>;
    /** A KEY=VALUE file on this host read at each start; undefined: none. */
    envFile: string | undefined;
    user: string | undefined;
    stopSignal: string;
    stopTimeoutMs: number;
  };
  bluePort: number;
  greenPort: number;
  proxy: ProxyDefinition;
  health: HealthGate;
  /** How long the previous color is kept warm after a switch. */
  keepPreviousMs: number;
  /** Resource limits; undefined where the spec sets none. */
  limits: { memoryBytes: number | undefined; cpuCores: number | undefined };
  /** What preflight requires of the host; 0 where the spec says nothing. */
  needs: { minFreeMemoryBytes: number; minFreeDiskBytes: number; maxLoad: number };
}

/** The host proxy in front of the app's colors. */
export interface ProxyDefinition {
  listenPort: number;
  protocol: "http" | "tcp";
  directives: string[];
  /** The names the app answers to on its port; [] = every name (the port is the app's alone). */
  serverNames: string[];
  /** With serverNames: names no app on the port claims come here too. */
  defaultServer: boolean;
  /** HTTPS on listenPort; undefined: plain HTTP. */
  tls: { certificate: TlsSource; key: TlsSource } | undefined;
  /** With tls: the port whose plain HTTP is redirected to HTTPS. */
  redirectHttpPort: number | undefined;
  http2: boolean;
}

/** Where a TLS file comes from: a path on this host, or one of the app's secrets (its PEM, held in SecretVault). */
export type TlsSource = { path: string } | { secret: string };

type WireProxy = cutover.v1.ProxySpec.$Properties;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const isPort = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n > 0 && n < 65536;

/** Live checks when the Deploy names no interval (an older coordinator sends none): the spec's default, 5 s. */
export const DEFAULT_LIVE_CHECK_INTERVAL_MS = 5000;
/** Live checks run for as long as an instance does: no more often than this (the spec's floor too). */
const MIN_LIVE_INTERVAL_MS = 1000;
/** setTimeout fires at once for longer delays. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const isLiveInterval = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= MIN_LIVE_INTERVAL_MS && n <= MAX_TIMER_MS;

/**
 * The definition a Deploy carries, checked and with defaults filled in; throws
 * ERR_INVALID_DEFINITION naming what is missing. Idempotent: a definition
 * saved in a snapshot (older agents saved the wire form) reads back through it.
 */
export function appDefinitionOf(wire: WireDefinition | AppDefinition | null | undefined): AppDefinition {
  const name = wire?.name ?? "";
  const invalid = (what: string) => new DeployError("ERR_INVALID_DEFINITION", `the definition of ${name && isValidName(name) ? name : "the app"} ${what}`);
  if (!wire || !isValidName(name)) throw invalid(`has no valid app name (${JSON.stringify(name)})`);
  const { bluePort, greenPort } = wire;
  if (!isPort(bluePort) || !isPort(greenPort) || bluePort === greenPort) throw invalid("needs two different ports, blue and green");
  const proxy = proxyOf(wire.proxy, invalid);
  const command = wire.run?.command ?? [];
  if (command.length === 0 || command.some((arg) => typeof arg !== "string")) throw invalid("has no run command");
  // A snapshot saved before secrets existed has none.
  const secretEnv: Record<string, string> = { ...(wire.run?.secretEnv ?? {}) };
  if (Object.entries(secretEnv).some(([variable, secret]) => !ENV_NAME.test(variable) || typeof secret !== "string" || !ENV_NAME.test(secret))) {
    throw invalid("references a secret by a name that is not an environment variable name");
  }
  const envFile = wire.run?.envFile || undefined;
  if (envFile !== undefined && (!envFile.startsWith("/") || envFile.includes("\0"))) throw invalid("has an env_file that is not an absolute path");
  const health = healthGateOf(wire.health);
  if (!isLiveInterval(health.liveIntervalMs)) {
    throw invalid(`has a health live interval of ${health.liveIntervalMs} ms: it must be a whole number of ms from ${MIN_LIVE_INTERVAL_MS} to ${MAX_TIMER_MS}`);
  }
  return {
    name,
    run: {
      command: [...command],
      env: { ...(wire.run?.env ?? {}) },
      secretEnv,
      envFile,
      user: wire.run?.user || undefined,
      stopSignal: wire.run?.stopSignal || "SIGTERM",
      stopTimeoutMs: Number(wire.run?.stopTimeoutMs || 30_000),
    },
    bluePort,
    greenPort,
    proxy,
    health,
    keepPreviousMs: Number(wire.keepPreviousMs ?? 0),
    limits: { memoryBytes: Number(wire.limits?.memoryBytes ?? 0) || undefined, cpuCores: Number(wire.limits?.cpuCores ?? 0) || undefined },
    needs: {
      minFreeMemoryBytes: Number(wire.needs?.minFreeMemoryBytes ?? 0),
      minFreeDiskBytes: Number(wire.needs?.minFreeDiskBytes ?? 0),
      maxLoad: Number(wire.needs?.maxLoad ?? 0),
    },
  };
}

/**
 * The wire's proxy section (or one already read), checked: a listen port, names nginx reads
 * as names (isServerName: never a regex), TLS files as plain absolute paths or secret names.
 * Whether the files are there and safe is the host's to judge (admission.ts).
 */
function proxyOf(wire: WireProxy | ProxyDefinition | null | undefined, invalid: (what: string) => DeployError): ProxyDefinition {
  const listenPort = wire?.listenPort;
  if (!isPort(listenPort)) throw invalid("has no proxy listen port");
  const protocol = wire?.protocol === "tcp" ? "tcp" : "http";
  // A definition read back from a snapshot has the fields itself; the wire has them in virtualHost.
  const vh = wire && "serverNames" in wire ? wire : (wire?.virtualHost ?? undefined);
  const serverNames = [...(vh?.serverNames ?? [])];
  const bad = serverNames.find((name) => !isServerName(name));
  if (bad !== undefined) throw invalid(`has a server name nginx would not read as a host name: ${JSON.stringify(bad)}`);
  if (new Set(serverNames).size !== serverNames.length) throw invalid("names one server name twice");
  const tls = tlsOf(vh?.tls, invalid);
  const redirect = vh?.redirectHttpPort ?? undefined;
  if (redirect && (!isPort(redirect) || redirect === listenPort || tls === undefined)) throw invalid(`has a redirect_http port (${redirect}) that is not a port other than listen, or no tls`);
  if ((serverNames.length > 0 || tls !== undefined) && protocol === "tcp") throw invalid("has server names or TLS on a tcp proxy");
  return {
    listenPort,
    protocol,
    directives: [...(wire?.directives ?? [])],
    serverNames,
    defaultServer: serverNames.length > 0 && Boolean(vh?.defaultServer),
    tls,
    redirectHttpPort: redirect || undefined,
    http2: tls !== undefined && Boolean(vh?.http2),
  };
}

function tlsOf(tls: cutover.v1.TlsFiles.$Properties | ProxyDefinition["tls"] | null | undefined, invalid: (what: string) => DeployError): ProxyDefinition["tls"] {
  if (!tls) return undefined;
  if ("certificate" in tls) return { certificate: tlsSourceOf(tls.certificate, "certificate", invalid), key: tlsSourceOf(tls.key, "key", invalid) };
  const source = (path: string | null | undefined, secret: string | null | undefined, what: string): TlsSource =>
    tlsSourceOf(path ? { path } : secret ? { secret } : undefined, what, invalid);
  return { certificate: source(tls.certificatePath, tls.certificateSecret, "certificate"), key: source(tls.keyPath, tls.keySecret, "key") };
}

function tlsSourceOf(source: TlsSource | undefined, what: string, invalid: (what: string) => DeployError): TlsSource {
  if (source && "path" in source && isTlsPath(source.path)) return { path: source.path };
  if (source && "secret" in source && ENV_NAME.test(source.secret)) return { secret: source.secret };
  throw invalid(`has a TLS ${what} that is neither a plain absolute path nor a secret name`);
}

type WireHealth = cutover.v1.HealthSpec.$Properties;

/**
 * The wire's health section (or a gate already filled in) with the defaults: http GET / → 200, gated every
 * second, 60 s to pass, then live checks every 5 s. A gate saved by an older agent has no live interval: the default.
 */
function healthGateOf(health: WireHealth | HealthGate | null | undefined): HealthGate {
  if (health && "check" in health) return { ...health, liveIntervalMs: health.liveIntervalMs ?? DEFAULT_LIVE_CHECK_INTERVAL_MS };
  const check: HealthCheck = health?.kind === "tcp" ? { kind: "tcp" } : { kind: "http", path: health?.path || "/", expectStatus: health?.expectStatus || 200 };
  return {
    check,
    intervalMs: health?.intervalMs || 1000,
    liveIntervalMs: health?.liveIntervalMs || DEFAULT_LIVE_CHECK_INTERVAL_MS,
    timeoutMs: health?.timeoutMs || 2000,
    healthyThreshold: health?.healthyThreshold || 1,
    deadlineMs: health?.deadlineMs || 60_000,
  };
}

/** The port a color of the app listens on. */
export function portOf(definition: AppDefinition, color: Color): number {
  return color === "blue" ? definition.bluePort : definition.greenPort;
}

/** The color whose port `port` is, if the app has one. */
export function colorOfPort(definition: AppDefinition | undefined, port: number): Color | undefined {
  if (definition?.bluePort === port) return "blue";
  if (definition?.greenPort === port) return "green";
  return undefined;
}
