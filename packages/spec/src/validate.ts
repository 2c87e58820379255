/**
 * Turns the plain value of a spec's YAML into an AppSpec, or into the list of
 * everything wrong with it.
 *
 * Each reader records an issue for a bad value and hands back a placeholder
 * ("", 0) so the walk can go on and find the other issues; the spec built from
 * placeholders is thrown away whenever an issue was recorded.
 */
import { isValidLabel, isValidName, LABEL_RULE, NAME_RULE } from "@cutover/protocol";
import { resolve } from "node:path";
import { Checker, describe, fieldPath, isMapping, openSection, Section } from "./checker.js";
import * as D from "./defaults.js";
import { checkProxyDirective } from "./directives.js";
import { isUrlPath } from "./url-path.js";
import { readHooks } from "./hooks.js";
import { readVirtualHost, VIRTUAL_HOST_KEYS } from "./virtual-host.js";
import type { SpecIssue } from "./errors.js";
import type {
  AnalysisSpec,
  AppSpec,
  ArtifactSpec,
  CanaryPin,
  CanarySpec,
  Comparator,
  CountOrPercent,
  FleetGroups,
  HealthCheck,
  HealthSpec,
  LabelSelector,
  LbSpec,
  LimitsSpec,
  PortsSpec,
  PrometheusCheck,
  ProxySpec,
  ResourcesSpec,
  RunSpec,
  EnvValue,
  SecretRef,
  StopSignal,
  StrategySpec,
  StrategyType,
} from "./types.js";
import { DURATION_RULE, durationMs, percentValue, SIZE_RULE, sizeBytes } from "./units.js";

export type ExistsFn = (path: string) => "file" | "dir" | null;

export interface ValidateOptions {
  /** Directory relative artifact paths start from. */
  baseDir: string;
  exists: ExistsFn;
  /** The text of a scalar as written in the file, so env `1.10` stays "1.10" rather than "1.1". */
  scalarSource: (path: readonly string[]) => string | undefined;
}

const TOP_KEYS = ["app", "artifact", "run", "ports", "proxy", "health", "hosts", "lb", "strategy", "resources", "limits", "hooks"] as const;
const RUN_KEYS = ["command", "env", "env_file", "user", "stop_signal", "stop_timeout"] as const;
const PORTS_KEYS = ["blue", "green"] as const;
const PROXY_KEYS = ["listen", "protocol", "directives", ...VIRTUAL_HOST_KEYS] as const;
const HEALTH_KEYS = ["http", "tcp", "interval", "live_interval", "timeout", "healthy_threshold", "deadline"] as const;
const HTTP_CHECK_KEYS = ["path", "expect_status"] as const;
const LB_KEYS = ["hosts", "listen", "drain_timeout", ...VIRTUAL_HOST_KEYS] as const;
const STRATEGY_KEYS = ["type", "batch", "max_failures", "keep_previous", "canary", "groups", "steps", "step_pause", "analysis", "verify", "progress_deadline"] as const;
const CANARY_KEYS = ["hosts", "weight", "cookie", "pin", "then", "analysis"] as const;
const PIN_KEYS = ["header", "cookie", "value"] as const;
/** The keys of every analysis section (canary.analysis, analysis, verify); packages/spec/README.md describes each. */
export const ANALYSIS_KEYS = ["interval", "count", "window", "failure_limit", "min_requests", "max_error_rate", "max_latency_p99", "prometheus"] as const;
export const PROMETHEUS_KEYS = ["url", "query", "success"] as const;
const GROUPS_KEYS = ["label", "blue", "green"] as const;
const RESOURCES_KEYS = ["min_free_memory", "min_free_disk", "max_load"] as const;
const LIMITS_KEYS = ["memory", "cpu"] as const;

const STRATEGY_TYPES: readonly StrategyType[] = ["bluegreen", "rolling", "canary", "fleet-bluegreen"];
/** Strategies that move traffic on the front load balancers, so they need `lb`. */
const NEEDS_LB: readonly StrategyType[] = ["rolling", "canary", "fleet-bluegreen"];
const STOP_SIGNALS: readonly StopSignal[] = ["SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGALRM", "SIGABRT", "SIGKILL"];

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const UNIX_USER = /^[a-z_][a-z0-9_-]{0,31}$/;
/** RFC 3986 path and query characters; no spaces or quotes, which would break the probe request. */
/** Cookie and header names and pin values end up in nginx config: keep them to characters that need no quoting there. */
const COOKIE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const HEADER_NAME = /^[A-Za-z0-9-]{1,64}$/;
const PIN_VALUE = /^[A-Za-z0-9._~:@+=,-]{1,128}$/;
const TARBALL = /\.(?:tar\.gz|tgz)$/;
/** `< 0.01`, `>= 0.99`: a comparator, then a finite decimal number. */
const SUCCESS_CONDITION = /^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$/;
/** Control characters other than tab, which PromQL reads as a blank. */
const CONTROL_CHARACTER = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Measurements closer together than this would count too few requests each to mean anything. */
const MIN_ANALYSIS_INTERVAL_MS = 1_000;
/** Live checks run for as long as an instance does, on every app of every host: no more often than this (the agent's floor too). */
const MIN_LIVE_CHECK_INTERVAL_MS = 1_000;
const MAX_PROMETHEUS_QUERY_LENGTH = 2_000;

const PORT_RULE = "a port number 1..65535";
const ENV_FILE_RULE = "an absolute path to a file of KEY=VALUE lines on each host, like /etc/geoip/env";
const SECRET_REF_RULE = "{ secret: NAME }, naming one of the app's secrets (cutover secret set APP NAME)";
const SECRET_NAME_RULE = "a secret name of A-Z, a-z, 0-9 and '_', not starting with a digit (cutover secret list APP shows the names set)";
const DIRECTIVE_RULE = "one allowed nginx directive with plain arguments, like \"client_max_body_size 10m\"";
/** run.user is optional, but the host decides: an agent running as root starts an app without one only where allow_root_apps is set. */
const RUN_USER_RULE =
  "a unix user name: a-z, 0-9, '_', '-', starting with a letter or '_', at most 32 characters (leave it out only for hosts whose agent sets allow_root_apps: the app would run as root)";
const COUNT_OR_PERCENT_RULE = 'a host count (integer >= 1) or a percent "1%".."100%"';
const PERCENT_RULE = 'a percent 0..100, like 10 or "10%"';
const ERROR_RATE_RULE = 'a percent of requests 0..100 with its % sign, like "1%" or "0.5%"';
const ANALYSIS_SHAPE = 'a mapping with at least one check, like { interval: 10s, count: 6, max_error_rate: "1%" }';
const ANALYSIS_CHECKS_RULE = "at least one check: max_error_rate, max_latency_p99 or prometheus";
const PROMETHEUS_SHAPE = 'a mapping like { url: "http://127.0.0.1:9090", query: "sum(rate(errors_total[1m]))", success: "< 0.01" }';
/** Credentials would be stored and shown with the spec, so a URL may not carry them. */
const PROMETHEUS_URL_RULE = 'an http:// or https:// URL of the Prometheus server, like "http://127.0.0.1:9090", without user:password (the spec is stored and shown), query string or fragment';
const PROMQL_RULE = `a PromQL query on one line, at most ${MAX_PROMETHEUS_QUERY_LENGTH} characters (YAML's ">-" folds a long one onto one line)`;
const SUCCESS_RULE = 'a comparator (<, <=, >, >=, ==, !=) and a number, quoted, like "< 0.01" or ">= 0.99"';

// ---- value parsers: return undefined for anything that is not valid ----

const text =
  (check: (value: string) => boolean = () => true) =>
  (value: unknown): string | undefined =>
    typeof value === "string" && check(value) ? value : undefined;

const integer =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (value: unknown): number | undefined =>
    Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max ? (value as number) : undefined;

const port = integer(1, 65535);

const positiveNumber = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) && value > 0 ? value : undefined;

const duration =
  (min: number) =>
  (value: unknown): number | undefined => {
    const ms = typeof value === "string" ? durationMs(value) : undefined;
    return ms !== undefined && ms >= min ? ms : undefined;
  };

const size =
  (min: number) =>
  (value: unknown): number | undefined => {
    const bytes = typeof value === "string" || typeof value === "number" ? sizeBytes(value) : undefined;
    return bytes !== undefined && bytes >= min ? bytes : undefined;
  };

/** A percent 0..100, written as a number or as "N%". */
const percent = (value: unknown): number | undefined => {
  const n = typeof value === "number" ? value : typeof value === "string" ? percentValue(value) : undefined;
  return n !== undefined && Number.isFinite(n) && n >= 0 && n <= 100 ? n : undefined;
};

/** A percent 0..100 written only as "N%": a bare 0.01 could mean 1% or 0.01%. */
const percentString = (value: unknown): number | undefined => (typeof value === "string" ? percent(value) : undefined);

const countOrPercent = (value: unknown): CountOrPercent | undefined => {
  if (typeof value === "number") return integer(1)(value) === undefined ? undefined : { kind: "count", count: value };
  const share = typeof value === "string" ? percentValue(value) : undefined;
  return share !== undefined && share > 0 && share <= 100 ? { kind: "percent", percent: share } : undefined;
};

const oneOf =
  <T extends string>(choices: readonly T[]) =>
  (value: unknown): T | undefined =>
    choices.find((choice) => choice === value);

const stopSignal = (value: unknown): StopSignal | undefined =>
  typeof value === "string" ? oneOf(STOP_SIGNALS)(value.startsWith("SIG") ? value : `SIG${value}`) : undefined;

// ---- sections ----

export function validateSpec(raw: unknown, options: ValidateOptions): { spec: AppSpec; issues: SpecIssue[] } {
  const c = new Checker();
  if (!isMapping(raw)) {
    const expected = "a YAML mapping with app, run, ports, proxy, health and hosts";
    if (raw === null || raw === undefined) c.fail("(root)", expected, "an empty file");
    else c.wrong("(root)", expected, raw);
    return { spec: undefined as unknown as AppSpec, issues: c.issues };
  }
  const root = openSection(c, "", raw, TOP_KEYS, "a mapping")!;

  const app = root.read("app", `an app name: ${NAME_RULE}`, text(isValidName), true) ?? "";
  const artifact = readArtifact(root, options);
  const run = readRun(root, options);
  const ports = readPorts(root);
  const proxy = readProxy(root, ports);
  const health = readHealth(root);
  const hosts = readSelector(c, "hosts", root.value("hosts"), true);
  const lb = root.has("lb") ? readLb(root) : undefined;
  const strategy = readStrategy(root, hosts);
  if (NEEDS_LB.includes(strategy.type) && root.value("lb") === undefined) {
    c.fail("lb", `front load balancers, lb: { hosts, listen }, because strategy ${strategy.type} moves traffic on them`, "nothing");
  }
  if (lb && proxy.tls) {
    c.fail("proxy.tls", "nothing here with lb: the load balancers pass plain HTTP to each host's proxy.listen; serve HTTPS at lb.tls (and keep proxy plain)", "a mapping");
  }
  const resources = readResources(root);
  const limits = readLimits(root);
  // A wrong progress_deadline is an issue already: hooks are not also measured against its placeholder.
  const deadlineRead = !c.issues.some((issue) => issue.field === "strategy.progress_deadline");
  const hooks = root.has("hooks") ? readHooks(root, deadlineRead ? strategy.progressDeadlineMs : undefined) : undefined;

  const spec: AppSpec = {
    app,
    ...(artifact && { artifact }),
    run,
    ports,
    proxy,
    health,
    hosts,
    ...(lb && { lb }),
    strategy,
    resources,
    limits,
    ...(hooks && (hooks.preDeploy || hooks.postSwitch) && { hooks }),
  };
  return { spec, issues: c.issues };
}

function readArtifact(root: Section, options: ValidateOptions): ArtifactSpec | undefined {
  const given = root.read("artifact", "a path to a directory or a .tar.gz/.tgz file", text((v) => v !== "" && !v.includes("\0")));
  if (given === undefined) return undefined;
  const path = resolve(options.baseDir, given);
  const found = options.exists(path);
  if (found === "dir") return { path, kind: "dir" };
  if (found === "file" && TARBALL.test(path)) return { path, kind: "tarball" };
  root.c.fail(
    "artifact",
    "an existing directory or .tar.gz/.tgz file",
    `${describe(given)} (${path}): ${found === "file" ? "a file that is not a .tar.gz/.tgz" : "not found"}`,
  );
  return undefined;
}

function readRun(root: Section, options: ValidateOptions): RunSpec {
  const placeholder: RunSpec = { command: [], env: {}, stopSignal: D.DEFAULT_STOP_SIGNAL, stopTimeoutMs: D.DEFAULT_STOP_TIMEOUT_MS };
  const run = root.section("run", RUN_KEYS, "a mapping with command (and optionally env, env_file, user, stop_signal, stop_timeout)", true);
  if (!run) return placeholder;
  const command = readCommand(run);
  const env = readEnv(run, options);
  const envFile = run.read("env_file", ENV_FILE_RULE, text((v) => v.startsWith("/") && !v.includes("\0") && !/[\r\n]/.test(v)));
  const user = run.read("user", RUN_USER_RULE, text((v) => UNIX_USER.test(v)));
  return {
    command,
    env,
    ...(envFile !== undefined && { envFile }),
    ...(user !== undefined && { user }),
    stopSignal: run.read("stop_signal", `a signal name: ${STOP_SIGNALS.join(", ")}`, stopSignal) ?? D.DEFAULT_STOP_SIGNAL,
    stopTimeoutMs: run.read("stop_timeout", DURATION_RULE, duration(0)) ?? D.DEFAULT_STOP_TIMEOUT_MS,
  };
}

function readCommand(run: Section): string[] {
  const expected = 'the program and its arguments as a list of strings, like ["node", "server.js"] (no shell)';
  const value = run.value("command");
  if (!Array.isArray(value) || value.length === 0) {
    run.c.wrong(run.at("command"), expected, value);
    return [];
  }
  return value.map((arg: unknown, i) => {
    const field = `${run.at("command")}[${i}]`;
    if (typeof arg !== "string") {
      run.c.wrong(field, "a string (quote numbers and booleans)", arg);
    } else if (arg.includes("\0")) {
      run.c.wrong(field, "a string without NUL characters", arg);
    } else if (i === 0 && arg === "") {
      run.c.wrong(field, "a program name or path", arg);
    } else {
      return arg;
    }
    return "";
  });
}

function readEnv(run: Section, options: ValidateOptions): Record<string, EnvValue> {
  const value = run.value("env");
  if (value === undefined || value === null) return {};
  if (!isMapping(value)) {
    run.c.wrong(run.at("env"), "a mapping of variable names to values", value);
    return {};
  }
  const env = new Section(run.c, run.at("env"), value);
  const entries: [string, EnvValue][] = [];
  for (const [name, v] of Object.entries(value)) {
    if (!ENV_NAME.test(name)) {
      run.c.fail(env.at(name), "a variable name of A-Z, a-z, 0-9 and '_', not starting with a digit", JSON.stringify(name));
    } else if (isMapping(v)) {
      const ref = readSecretRef(new Section(run.c, env.at(name), v));
      if (ref) entries.push([name, ref]);
    } else if (typeof v === "string") {
      if (v.includes("\0")) run.c.wrong(env.at(name), "a value without NUL characters", v);
      else entries.push([name, v]);
    } else if (typeof v === "number" || typeof v === "boolean") {
      entries.push([name, options.scalarSource(["run", "env", name]) ?? String(v)]);
    } else {
      run.c.wrong(env.at(name), "a string, number or boolean, or { secret: NAME }", v);
    }
  }
  // fromEntries defines own properties, so a variable named __proto__ cannot reach the prototype.
  return Object.fromEntries(entries);
}

/** `{ secret: NAME }`: a reference to the app's secret NAME; the value never appears in the spec. */
function readSecretRef(ref: Section): SecretRef | undefined {
  const unknown = Object.keys(ref.raw).filter((key) => key !== "secret");
  if (unknown.length > 0 || !("secret" in ref.raw)) {
    ref.c.fail(ref.path, SECRET_REF_RULE, unknown.length > 0 ? `unknown key ${JSON.stringify(unknown[0])}` : "no secret key");
    return undefined;
  }
  const secret = ref.read("secret", SECRET_NAME_RULE, text((v) => ENV_NAME.test(v)));
  return secret === undefined ? undefined : { secret };
}

function readPorts(root: Section): PortsSpec {
  const ports = root.section("ports", PORTS_KEYS, "a mapping with the blue and green ports, like { blue: 7001, green: 7002 }", true);
  if (!ports) return { blue: 0, green: 0 };
  const blue = ports.read("blue", PORT_RULE, port, true) ?? 0;
  const green = ports.read("green", PORT_RULE, port, true) ?? 0;
  if (blue !== 0 && blue === green) ports.c.fail(ports.at("green"), `a port different from ports.blue (${blue})`, String(green));
  return { blue, green };
}

function readProxy(root: Section, ports: PortsSpec): ProxySpec {
  const proxy = root.section("proxy", PROXY_KEYS, "a mapping with the port nginx listens on, like { listen: 80 }", true);
  if (!proxy) return { listen: 0, protocol: D.DEFAULT_PROXY_PROTOCOL };
  const listen = proxy.read("listen", PORT_RULE, port, true) ?? 0;
  if (listen !== 0 && (listen === ports.blue || listen === ports.green)) {
    const color = listen === ports.blue ? "blue" : "green";
    proxy.c.fail(proxy.at("listen"), `a port other than ports.blue and ports.green (ports.${color} is ${listen})`, String(listen));
  }
  const protocol = proxy.read("protocol", "http or tcp", oneOf(["http", "tcp"] as const)) ?? D.DEFAULT_PROXY_PROTOCOL;
  const directives = readDirectives(proxy);
  const virtualHost = readVirtualHost(proxy, listen, protocol === "tcp" ? { plainOnly: "is for HTTP, and protocol is tcp" } : {});
  return { listen, protocol, ...(directives.length > 0 && { directives }), ...virtualHost };
}

/** proxy.directives: allowed nginx directives, one per entry, kept inside the app's server block (see directives.ts). */
function readDirectives(proxy: Section): string[] {
  const value = proxy.value("directives");
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    proxy.c.wrong(proxy.at("directives"), 'a list of nginx directives, one per entry, like ["client_max_body_size 10m"]', value);
    return [];
  }
  return value.flatMap((entry: unknown, i) => {
    const checked = checkProxyDirective(entry);
    if (checked.ok) return [checked.directive];
    proxy.c.fail(`${proxy.at("directives")}[${i}]`, DIRECTIVE_RULE, `${describe(entry)}: ${checked.why}`);
    return [];
  });
}

function readHealth(root: Section): HealthSpec {
  const placeholder: HealthSpec = {
    check: { kind: "tcp" },
    intervalMs: D.DEFAULT_HEALTH_INTERVAL_MS,
    liveIntervalMs: D.DEFAULT_LIVE_CHECK_INTERVAL_MS,
    timeoutMs: D.DEFAULT_HEALTH_TIMEOUT_MS,
    healthyThreshold: D.DEFAULT_HEALTHY_THRESHOLD,
    deadlineMs: D.DEFAULT_HEALTH_DEADLINE_MS,
  };
  const health = root.section("health", HEALTH_KEYS, "a mapping with one check, http: { path } or tcp: {}", true);
  if (!health) return placeholder;
  const check = readHealthCheck(health);
  const issuesBefore = health.c.issues.length;
  const intervalMs = health.read("interval", `${DURATION_RULE}, more than 0`, duration(1)) ?? D.DEFAULT_HEALTH_INTERVAL_MS;
  // The gate's interval is how fast a deploy proceeds; live checks are steady-state monitoring, with their own slower cadence.
  const liveIntervalMs =
    health.read("live_interval", `${DURATION_RULE}, at least 1s`, duration(MIN_LIVE_CHECK_INTERVAL_MS)) ?? D.DEFAULT_LIVE_CHECK_INTERVAL_MS;
  const timeoutMs = health.read("timeout", `${DURATION_RULE}, more than 0`, duration(1)) ?? D.DEFAULT_HEALTH_TIMEOUT_MS;
  const healthyThreshold = health.read("healthy_threshold", "an integer >= 1", integer(1)) ?? D.DEFAULT_HEALTHY_THRESHOLD;
  const deadlineMs = health.read("deadline", `${DURATION_RULE}, more than 0`, duration(1)) ?? D.DEFAULT_HEALTH_DEADLINE_MS;
  // A gate that needs more probes than fit before its deadline can never pass.
  const minDeadlineMs = healthyThreshold * intervalMs;
  if (health.c.issues.length === issuesBefore && deadlineMs < minDeadlineMs) {
    health.c.fail(health.at("deadline"), `at least healthy_threshold × interval (${minDeadlineMs}ms), or the health gate can never pass`, describe(health.value("deadline") ?? `${deadlineMs}ms`));
  }
  return { check, intervalMs, liveIntervalMs, timeoutMs, healthyThreshold, deadlineMs };
}

function readHealthCheck(health: Section): HealthCheck {
  const hasHttp = health.has("http");
  const hasTcp = health.has("tcp");
  if (hasHttp === hasTcp) {
    health.c.fail(health.path, "exactly one check, http: { path: /health } or tcp: {}", hasHttp ? "both http and tcp" : "neither");
    return { kind: "tcp" };
  }
  if (hasTcp) {
    const tcp = health.value("tcp");
    if (tcp !== null) openSection(health.c, health.at("tcp"), tcp, [], "an empty mapping, tcp: {}");
    return { kind: "tcp" };
  }
  const http = openSection(health.c, health.at("http"), health.value("http"), HTTP_CHECK_KEYS, "a mapping with the path to probe, like { path: /health }");
  if (!http) return { kind: "tcp" };
  return {
    kind: "http",
    path: http.read("path", 'a URL path starting with "/", without spaces', text(isUrlPath), true) ?? "",
    expectStatus: http.read("expect_status", "an HTTP status code 100..599", integer(100, 599)) ?? D.DEFAULT_EXPECT_STATUS,
  };
}

/** A label selector: a non-empty mapping of label keys to string values. */
function readSelector(c: Checker, path: string, value: unknown, required: boolean): LabelSelector {
  if (!isMapping(value) || (required && Object.keys(value).length === 0)) {
    if (value !== undefined || required) c.wrong(path, "a label selector with at least one label, like { role: web }", value);
    return {};
  }
  const selector = new Section(c, path, value);
  const entries: [string, string][] = [];
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== "string") c.wrong(selector.at(key), "a label value string (quote numbers and booleans)", v);
    else if (!isValidLabel(key, v)) c.fail(selector.at(key), `a valid label (${LABEL_RULE})`, `${JSON.stringify(key)}: ${JSON.stringify(v)}`);
    else entries.push([key, v]);
  }
  return Object.fromEntries(entries);
}

function readLb(root: Section): LbSpec | undefined {
  const lb = root.section("lb", LB_KEYS, "a mapping with the load balancer hosts and port, like { hosts: { role: lb }, listen: 80 }", true);
  if (!lb) return undefined;
  const listen = lb.read("listen", PORT_RULE, port, true) ?? 0;
  return {
    hosts: readSelector(lb.c, lb.at("hosts"), lb.value("hosts"), true),
    listen,
    drainTimeoutMs: lb.read("drain_timeout", DURATION_RULE, duration(0)) ?? D.DEFAULT_LB_DRAIN_TIMEOUT_MS,
    ...readVirtualHost(lb, listen, { pathsOnly: "the load balancers' files live on the LB hosts; secrets are for proxy.tls" }),
  };
}

function readStrategy(root: Section, hosts: LabelSelector): StrategySpec {
  const strategy = root.section("strategy", STRATEGY_KEYS, "a mapping with the strategy type and its options");
  const s = strategy ?? new Section(root.c, "strategy", {});
  const type = s.read("type", STRATEGY_TYPES.join(", "), oneOf(STRATEGY_TYPES));
  const known = type ?? (s.has("type") ? undefined : D.DEFAULT_STRATEGY_TYPE);
  const batch = s.read("batch", COUNT_OR_PERCENT_RULE, countOrPercent) ?? { ...D.DEFAULT_BATCH };
  const maxFailures = s.read("max_failures", "an integer >= 0", integer(0)) ?? D.DEFAULT_MAX_FAILURES;
  const progressDeadlineMs = s.read("progress_deadline", `${DURATION_RULE}, more than 0`, duration(1));
  const base = { batch, maxFailures, progressDeadlineMs: progressDeadlineMs ?? D.DEFAULT_PROGRESS_DEADLINE_MS };
  /** The deadline an analysis must fit in; undefined when progress_deadline is wrong, which is already an issue. */
  const deadlineMs = progressDeadlineMs ?? (s.has("progress_deadline") ? undefined : D.DEFAULT_PROGRESS_DEADLINE_MS);

  /** Whether the strategy may carry `key`: refuses it (one issue) when `type` is known and is not one of `owners`. */
  const allowed = (key: string, owners: readonly StrategyType[], why: string): boolean => {
    if (!s.has(key)) return false;
    if (known === undefined || owners.includes(known)) return true;
    s.c.fail(s.at(key), `nothing here: ${key} ${why} (type is ${known})`, describe(s.value(key)));
    return false;
  };
  const required = (key: string, owner: StrategyType, shape: string): void => {
    if (known === owner && !s.has(key)) s.c.fail(s.at(key), `${shape}, required by type ${owner}`, "nothing");
  };

  const keepPreviousMs = allowed("keep_previous", ["bluegreen", "canary", "fleet-bluegreen"], "does not apply to rolling, which replaces the app in place")
    ? s.read("keep_previous", DURATION_RULE, duration(0))
    : undefined;
  const canary = allowed("canary", ["canary"], "applies only to type canary") ? readCanary(s, deadlineMs) : undefined;
  required("canary", "canary", "a canary section, like { hosts: 1, weight: 10 }");
  const groups = allowed("groups", ["fleet-bluegreen"], "applies only to type fleet-bluegreen") ? readGroups(s, hosts) : undefined;
  required("groups", "fleet-bluegreen", "the two host groups, like { label: group, blue: a, green: b }");
  const steps = allowed("steps", ["fleet-bluegreen"], "applies only to type fleet-bluegreen") ? readSteps(s) : undefined;
  const stepPauseMs = allowed("step_pause", ["fleet-bluegreen"], "applies only to type fleet-bluegreen")
    ? s.read("step_pause", DURATION_RULE, duration(0))
    : undefined;
  const hasAnalysis = allowed("analysis", ["fleet-bluegreen"], "applies only to type fleet-bluegreen; a canary's goes in canary.analysis, bluegreen and rolling use verify");
  const analysis = hasAnalysis ? readAnalysis(s, "analysis", deadlineMs) : undefined;
  if (hasAnalysis && s.has("step_pause")) {
    s.c.fail(s.at("step_pause"), "nothing here when analysis is given: the analysis is the wait at each step", describe(s.value("step_pause")));
  }
  const verify = allowed("verify", ["bluegreen", "rolling"], "applies only to types bluegreen and rolling; a canary's goes in canary.analysis, fleet-bluegreen uses analysis")
    ? readAnalysis(s, "verify", deadlineMs)
    : undefined;

  const keep = keepPreviousMs ?? D.DEFAULT_KEEP_PREVIOUS_MS;
  switch (known ?? D.DEFAULT_STRATEGY_TYPE) {
    case "bluegreen":
      return { type: "bluegreen", ...base, keepPreviousMs: keep, ...(verify && { verify }) };
    case "rolling":
      return { type: "rolling", ...base, ...(verify && { verify }) };
    case "canary":
      return { type: "canary", ...base, keepPreviousMs: keep, canary: canary ?? PLACEHOLDER_CANARY };
    case "fleet-bluegreen":
      return {
        type: "fleet-bluegreen",
        ...base,
        keepPreviousMs: keep,
        groups: groups ?? { label: "", blue: "", green: "" },
        steps: steps ?? [...D.DEFAULT_FLEET_STEPS],
        // With an analysis there is no separate pause: the analysis is the wait at each step.
        stepPauseMs: analysis ? 0 : (stepPauseMs ?? D.DEFAULT_STEP_PAUSE_MS),
        ...(analysis && { analysis }),
      };
  }
}

const PLACEHOLDER_CANARY: CanarySpec = { hosts: D.DEFAULT_CANARY_HOSTS, weightPercent: 0, cookie: D.DEFAULT_CANARY_COOKIE, then: D.DEFAULT_CANARY_THEN };

function readCanary(strategy: Section, progressDeadlineMs: number | undefined): CanarySpec {
  const canary = strategy.section("canary", CANARY_KEYS, "a mapping like { hosts: 1, weight: 10 }", true);
  if (!canary) return PLACEHOLDER_CANARY;
  const pin = canary.has("pin") ? readPin(canary) : undefined;
  const analysis = canary.has("analysis") ? readAnalysis(canary, "analysis", progressDeadlineMs) : undefined;
  const weightPercent = canary.read("weight", 'the percent of users sent to the canaries, 0..100, like 10 or "10%"', percent, true);
  if (weightPercent === 0 && !canary.has("pin")) {
    canary.c.fail(canary.at("weight"), "more than 0, or a pin that routes chosen users to the canaries", "0");
  }
  return {
    hosts: canary.read("hosts", COUNT_OR_PERCENT_RULE, countOrPercent) ?? { ...D.DEFAULT_CANARY_HOSTS },
    weightPercent: weightPercent ?? 0,
    cookie: canary.read("cookie", "a cookie name of A-Z, a-z, 0-9, '_', '-' (at most 64)", text((v) => COOKIE_NAME.test(v))) ?? D.DEFAULT_CANARY_COOKIE,
    ...(pin && { pin }),
    then: canary.read("then", "bluegreen or rolling", oneOf(["bluegreen", "rolling"] as const)) ?? D.DEFAULT_CANARY_THEN,
    ...(analysis && { analysis }),
  };
}

function readPin(canary: Section): CanaryPin | undefined {
  const pin = canary.section("pin", PIN_KEYS, 'a mapping like { header: X-Canary, value: "1" } or { cookie: beta, value: "yes" }', true);
  if (!pin) return undefined;
  const value = pin.read("value", "a string of A-Z, a-z, 0-9 and ._~:@+=,- (at most 128; quote numbers)", text((v) => PIN_VALUE.test(v)), true);
  if (pin.has("header") === pin.has("cookie")) {
    pin.c.fail(pin.path, "exactly one of header or cookie", pin.has("header") ? "both" : "neither");
    return undefined;
  }
  const kind = pin.has("header") ? "header" : "cookie";
  const name =
    kind === "header"
      ? pin.read("header", "a header name of A-Z, a-z, 0-9 and '-' (at most 64)", text((v) => HEADER_NAME.test(v)))
      : pin.read("cookie", "a cookie name of A-Z, a-z, 0-9, '_', '-' (at most 64)", text((v) => COOKIE_NAME.test(v)));
  return name === undefined || value === undefined ? undefined : { kind, name, value };
}

/**
 * An analysis section (canary.analysis, analysis, verify). `count` or `window`
 * sets how many measurements; the older `{ window, max_error_rate }` form
 * still reads, with the interval shortened to the window when it is under 10s.
 * `progressDeadlineMs` is undefined when strategy.progress_deadline is itself wrong.
 */
function readAnalysis(parent: Section, key: string, progressDeadlineMs: number | undefined): AnalysisSpec | undefined {
  const analysis = parent.section(key, ANALYSIS_KEYS, ANALYSIS_SHAPE, true);
  if (!analysis) return undefined;
  const issuesBefore = analysis.c.issues.length;
  const atLeastOneSecond = `${DURATION_RULE}, at least 1s`;
  const givenInterval = analysis.read("interval", atLeastOneSecond, duration(MIN_ANALYSIS_INTERVAL_MS));
  const givenCount = analysis.read("count", "a number of measurements, an integer >= 1", integer(1));
  const windowMs = analysis.read("window", atLeastOneSecond, duration(MIN_ANALYSIS_INTERVAL_MS));
  if (analysis.has("count") && analysis.has("window")) {
    analysis.c.fail(analysis.path, "at most one of count or window (window means count = window / interval)", "both");
  }
  const intervalMs = givenInterval ?? Math.min(D.DEFAULT_ANALYSIS_INTERVAL_MS, windowMs ?? D.DEFAULT_ANALYSIS_INTERVAL_MS);
  if (givenInterval !== undefined && windowMs !== undefined && windowMs < givenInterval) {
    analysis.c.fail(analysis.at("window"), `at least interval (${givenInterval}ms), so it holds one measurement`, describe(analysis.value("window")));
  }
  const count = givenCount ?? (windowMs === undefined ? D.DEFAULT_ANALYSIS_COUNT : Math.ceil(windowMs / intervalMs));
  const failureLimit = analysis.read("failure_limit", "an integer >= 0", integer(0)) ?? D.DEFAULT_ANALYSIS_FAILURE_LIMIT;
  const minRequests = analysis.read("min_requests", "an integer >= 0", integer(0)) ?? D.DEFAULT_ANALYSIS_MIN_REQUESTS;
  const maxErrorRatePercent = analysis.read("max_error_rate", ERROR_RATE_RULE, percentString);
  const maxLatencyP99Ms = analysis.read("max_latency_p99", `${DURATION_RULE}, more than 0`, duration(1));
  const prometheus = analysis.has("prometheus") ? readPrometheus(analysis) : undefined;
  if (!analysis.has("max_error_rate") && !analysis.has("max_latency_p99") && !analysis.has("prometheus")) {
    analysis.c.fail(analysis.path, ANALYSIS_CHECKS_RULE, "none");
  }
  // Checks that combine fields only mean something once each field was read cleanly.
  if (analysis.c.issues.length === issuesBefore) {
    const totalMs = count * intervalMs;
    if (failureLimit >= count) {
      analysis.c.fail(analysis.at("failure_limit"), `less than the number of measurements (${count}), or the analysis could never fail`, String(failureLimit));
    } else if (progressDeadlineMs !== undefined && totalMs >= progressDeadlineMs) {
      analysis.c.fail(
        analysis.path,
        `count × interval less than strategy.progress_deadline (${progressDeadlineMs}ms), or the rollout's deadline passes before the analysis ends`,
        `${count} × ${intervalMs}ms = ${totalMs}ms`,
      );
    }
  }
  return {
    intervalMs,
    count,
    failureLimit,
    minRequests,
    ...(maxErrorRatePercent !== undefined && { maxErrorRatePercent }),
    ...(maxLatencyP99Ms !== undefined && { maxLatencyP99Ms }),
    ...(prometheus && { prometheus }),
  };
}

function readPrometheus(analysis: Section): PrometheusCheck | undefined {
  const prometheus = analysis.section("prometheus", PROMETHEUS_KEYS, PROMETHEUS_SHAPE, true);
  if (!prometheus) return undefined;
  const url = readPrometheusUrl(prometheus);
  const query = readPromql(prometheus);
  const success = prometheus.read("success", SUCCESS_RULE, successCondition, true);
  return url === undefined || query === undefined || success === undefined ? undefined : { url, query, success };
}

function readPrometheusUrl(prometheus: Section): string | undefined {
  const value = prometheus.value("url");
  if (typeof value === "string") {
    const problem = prometheusUrlProblem(value);
    if (problem === undefined) return value;
    prometheus.c.fail(prometheus.at("url"), PROMETHEUS_URL_RULE, problem);
  } else {
    prometheus.c.wrong(prometheus.at("url"), PROMETHEUS_URL_RULE, value);
  }
  return undefined;
}

/** What is wrong with a Prometheus URL, as the issue's `got`; undefined when nothing is. */
function prometheusUrlProblem(text: string): string | undefined {
  // First, and not repeated: the message ends up in terminals and logs. The test is on the text because `http://@host` parses with an empty user.
  if (/\/\/[^/?#]*@/.test(text)) return "a URL with a user or password in it (not repeated here)";
  let url: URL | undefined;
  try {
    // URL() would quietly trim blanks and drop tabs and newlines.
    url = /\s/.test(text) || CONTROL_CHARACTER.test(text) ? undefined : new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined) return `${describe(text)}: not a URL`;
  if (url.protocol !== "http:" && url.protocol !== "https:") return `${describe(text)}: not http or https`;
  if (url.username !== "" || url.password !== "") return "a URL with a user or password in it (not repeated here)";
  if (text.includes("?") || text.includes("#")) return `${describe(text)}: a query string or fragment`;
  return undefined;
}

function readPromql(prometheus: Section): string | undefined {
  const value = prometheus.value("query");
  if (typeof value === "string") {
    const problem = promqlProblem(value);
    if (problem === undefined) return value;
    prometheus.c.fail(prometheus.at("query"), PROMQL_RULE, `${describe(value)}: ${problem}`);
  } else {
    prometheus.c.wrong(prometheus.at("query"), PROMQL_RULE, value);
  }
  return undefined;
}

/** Why a query cannot be sent as is, or undefined when it can. */
function promqlProblem(query: string): string | undefined {
  if (query.trim() === "") return "empty";
  if (query.length > MAX_PROMETHEUS_QUERY_LENGTH) return `${query.length} characters`;
  if (/[\r\n]/.test(query)) return `${query.split(/\r\n|\r|\n/).length} lines`;
  if (CONTROL_CHARACTER.test(query)) return "a control character";
  return undefined;
}

/** `"< 0.01"` → `{ comparator: "<", value: 0.01 }`. */
const successCondition = (value: unknown): PrometheusCheck["success"] | undefined => {
  const match = typeof value === "string" ? SUCCESS_CONDITION.exec(value) : null;
  if (!match) return undefined;
  const number = Number(match[2]);
  return Number.isFinite(number) ? { comparator: match[1] as Comparator, value: number } : undefined;
};

function readGroups(strategy: Section, hosts: LabelSelector): FleetGroups | undefined {
  const groups = strategy.section("groups", GROUPS_KEYS, "a mapping like { label: group, blue: a, green: b }", true);
  if (!groups) return undefined;
  const label = groups.read("label", `a label key (${LABEL_RULE})`, text((v) => isValidLabel(v, "")), true);
  const groupValue = text((v) => v !== "" && isValidLabel(label ?? "x", v));
  const blue = groups.read("blue", `a label value (${LABEL_RULE})`, groupValue, true);
  const green = groups.read("green", `a label value (${LABEL_RULE})`, groupValue, true);
  if (blue !== undefined && blue === green) groups.c.fail(groups.at("green"), `a value different from groups.blue (${JSON.stringify(blue)})`, JSON.stringify(green));
  if (label !== undefined && Object.hasOwn(hosts, label)) {
    groups.c.fail(
      fieldPath("hosts", label),
      `no ${label} label: strategy.groups.label splits the selected hosts into the two groups, so hosts must select both`,
      JSON.stringify(hosts[label]),
    );
  }
  return label === undefined || blue === undefined || green === undefined ? undefined : { label, blue, green };
}

function readSteps(strategy: Section): number[] | undefined {
  const field = strategy.at("steps");
  const value = strategy.value("steps");
  if (!Array.isArray(value) || value.length === 0) {
    strategy.c.wrong(field, "a list of traffic percents ending at 100, like [10, 50, 100]", value);
    return undefined;
  }
  let ok = true;
  let previous = 0;
  value.forEach((step: unknown, i) => {
    const n = integer(1, 100)(step);
    if (n === undefined) strategy.c.wrong(`${field}[${i}]`, "an integer percent 1..100", step);
    else if (n <= previous) strategy.c.fail(`${field}[${i}]`, `more than the step before (${previous})`, String(n));
    else {
      previous = n;
      return;
    }
    ok = false;
  });
  if (ok && previous !== 100) strategy.c.fail(field, "a list ending at 100, so all traffic reaches the new group", `a list ending at ${previous}`);
  return ok ? (value as number[]) : undefined;
}

function readResources(root: Section): ResourcesSpec {
  const resources = root.section("resources", RESOURCES_KEYS, "a mapping with min_free_memory, min_free_disk or max_load");
  if (!resources) return {};
  const minFreeMemoryBytes = resources.read("min_free_memory", SIZE_RULE, size(0));
  const minFreeDiskBytes = resources.read("min_free_disk", SIZE_RULE, size(0));
  const maxLoad = resources.read("max_load", "a load average per core, a number more than 0, like 0.9", positiveNumber);
  return {
    ...(minFreeMemoryBytes !== undefined && { minFreeMemoryBytes }),
    ...(minFreeDiskBytes !== undefined && { minFreeDiskBytes }),
    ...(maxLoad !== undefined && { maxLoad }),
  };
}

function readLimits(root: Section): LimitsSpec {
  const limits = root.section("limits", LIMITS_KEYS, "a mapping with memory or cpu, like { memory: 512M, cpu: 1.0 }");
  if (!limits) return {};
  const memoryBytes = limits.read("memory", `${SIZE_RULE}, more than 0`, size(1));
  const cpu = limits.read("cpu", "a number of cores more than 0, like 0.5 or 2", positiveNumber);
  return { ...(memoryBytes !== undefined && { memoryBytes }), ...(cpu !== undefined && { cpu }) };
}

