/**
 * The validated, normalized app spec. Field names are the YAML names in
 * camelCase; durations end in `Ms` (milliseconds), sizes in `Bytes`, percents
 * in `Percent` (0..100). Defaults are already filled in. The object is plain
 * JSON: it can be stored and sent as is.
 */
export interface AppSpec {
  /** App name: 1–63 of a-z, 0-9, '.', '-', '_' (NAME_RULE). Names the app's releases, processes and nginx config on every host. */
  app: string;
  /** What gets uploaded to hosts. Absent: `run.command` uses what is already installed there. */
  artifact?: ArtifactSpec;
  /** How to start and stop one instance of the app. */
  run: RunSpec;
  /** The two local ports the app's blue and green instances listen on. */
  ports: PortsSpec;
  /** The per-host nginx in front of the two instances. */
  proxy: ProxySpec;
  /** How a new instance proves it is ready before it gets traffic. */
  health: HealthSpec;
  /** Label selector over the inventory: the app runs on hosts carrying every one of these labels. Never empty. */
  hosts: LabelSelector;
  /** Front load balancers; required by the rolling, canary and fleet-bluegreen strategies. */
  lb?: LbSpec;
  /** How a release rolls across the fleet. Default: bluegreen, one host at a time. */
  strategy: StrategySpec;
  /** Preflight thresholds checked against agent reports before a host starts a second copy. Each field optional. */
  resources: ResourcesSpec;
  /** Limits applied to each app process. Each field optional. */
  limits: LimitsSpec;
  /** Commands a deploy runs before any host switches and after each switch. Absent: none. */
  hooks?: HooksSpec;
}

/** Label key → required value; a host matches when it carries all of them. */
export type LabelSelector = Record<string, string>;

export interface ArtifactSpec {
  /** Absolute path, resolved against the spec file's directory. */
  path: string;
  /** `dir`: a directory to pack; `tarball`: a `.tar.gz`/`.tgz` file shipped as is. */
  kind: "dir" | "tarball";
}

/** Signals an app may be asked to stop with. */
export type StopSignal =
  | "SIGTERM"
  | "SIGINT"
  | "SIGQUIT"
  | "SIGHUP"
  | "SIGUSR1"
  | "SIGUSR2"
  | "SIGWINCH"
  | "SIGALRM"
  | "SIGABRT"
  | "SIGKILL";

export interface RunSpec {
  /**
   * argv, executed without a shell; never empty. `${PORT}` and similar
   * placeholders are left as written for the agent to fill in.
   */
  command: string[];
  /**
   * Extra environment variables. YAML numbers and booleans arrive as written (`1.10` stays "1.10").
   * A value `{ secret: NAME }` is a reference to the app's secret NAME (`cutover secret set APP NAME`):
   * the spec, the coordinator's store and every API read keep the reference; only the Deploy
   * command sent to the app's hosts carries the value. Default `{}`.
   */
  env: Record<string, EnvValue>;
  /**
   * A file on each host with more `KEY=VALUE` lines for the app's environment (values that live on
   * the host, e.g. `/etc/geoip/env`): an absolute path, read by the agent at every start of an
   * instance; a regular file, not world-writable. `run.env` wins over it.
   */
  envFile?: string;
  /**
   * Unix user to run as. Absent: the agent's own user, which is root on most hosts,
   * and an agent running as root refuses that (and any uid-0 user) unless its host
   * sets `allow_root_apps: true`: the spec cannot know the host, so the agent checks.
   */
  user?: string;
  /** Signal sent first when stopping; `TERM` in the YAML is normalized to `SIGTERM`. Default SIGTERM. */
  stopSignal: StopSignal;
  /** How long after the stop signal before SIGKILL. Default 30s. */
  stopTimeoutMs: number;
}

/** A `run.env` value: the text itself, or a reference to one of the app's secrets. */
export type EnvValue = string | SecretRef;

/** `{ secret: NAME }`: the value of the app's secret NAME, set with `cutover secret set APP NAME`. */
export interface SecretRef {
  /** The secret's name: an environment variable name (A-Z, a-z, 0-9, '_', not starting with a digit). */
  secret: string;
}

export interface PortsSpec {
  /** Port of the blue instance, 1..65535. */
  blue: number;
  /** Port of the green instance, 1..65535, not the blue port. */
  green: number;
}

/**
 * What a server block of ours answers on its port, app proxy or front load balancer. Every
 * field is optional: absent, the block has its port to itself, in plain HTTP/1.1.
 */
export interface VirtualHostSpec {
  /**
   * Host names (nginx `server_name`) this app answers to on its port, lower-case, each once;
   * a leading `*.` is a wildcard. Several apps may share a port of a host when each names
   * its own; an app without names has the port to itself. Absent: every name.
   */
  serverNames?: string[];
  /** With serverNames: the app also answers the names no app on its port claims. Absent: those get 404 (HTTPS: the handshake is refused). */
  defaultServer?: true;
  /** Serve HTTPS on the port with this certificate and key. Absent: plain HTTP. */
  tls?: TlsSpec;
  /** With tls: this port's plain HTTP requests for the names are redirected (301) to HTTPS. `redirect_http: true` is port 80. */
  redirectHttp?: number;
  /** With tls: offer HTTP/2. */
  http2?: true;
}

export interface TlsSpec {
  /** The certificate chain, PEM: leaf first. */
  certificate: TlsFile;
  /** Its private key, PEM. */
  key: TlsFile;
}

/**
 * A path on each host (absolute; the agent checks the file exists, nginx can read it and a
 * key is not readable by others), or `{ secret: NAME }`: the app's secret NAME holds the
 * PEM, which the agent writes to a file only root (or the agent's user) can read.
 */
export type TlsFile = string | SecretRef;

export interface ProxySpec extends VirtualHostSpec {
  /** Port the host's nginx listens on for this app, 1..65535, neither color's port. */
  listen: number;
  /** `http` proxies HTTP; `tcp` uses nginx stream for any TCP protocol. Default http. */
  protocol: "http" | "tcp";
  /**
   * Extra nginx directives for the app's server block (e.g. `client_max_body_size 10m`),
   * normalized without their `;`. Only the names in ALLOWED_PROXY_DIRECTIVES, with plain
   * arguments (`checkProxyDirective`); each host checks them again and runs `nginx -t`.
   */
  directives?: string[];
}

/** What one probe of an instance does. */
export type HealthCheck =
  /** GET `path` on the instance's port; healthy when the status is `expectStatus` (default 200). */
  | { kind: "http"; path: string; expectStatus: number }
  /** Healthy when the instance's port accepts a TCP connection. */
  | { kind: "tcp" };

export interface HealthSpec {
  check: HealthCheck;
  /** Time between the health gate's probes of a new instance: how fast a deploy proceeds. Default 1s. */
  intervalMs: number;
  /**
   * Time between live checks of an instance in service, once its gate passed: steady-state
   * monitoring, which runs for as long as the instance does. 3 failures in a row make it
   * unhealthy, so the default notices in about 15s. Default 5s, at least 1s.
   */
  liveIntervalMs: number;
  /** A probe that takes longer fails. Default 2s. */
  timeoutMs: number;
  /** Consecutive successful probes that make an instance healthy. Default 2. */
  healthyThreshold: number;
  /** An instance not healthy by then is stopped and the host's deploy fails. Default 60s; at least healthyThreshold × interval. */
  deadlineMs: number;
}

export interface LbSpec extends VirtualHostSpec {
  /** Label selector for the load balancer hosts. Never empty. */
  hosts: LabelSelector;
  /** Port the front nginx listens on, 1..65535. */
  listen: number;
  /** How long a host taken out of the upstream gets to finish in-flight requests. Default 30s. */
  drainTimeoutMs: number;
}

/** A number of hosts, or a share of the selected hosts (see resolveCount). */
export type CountOrPercent = { kind: "count"; count: number } | { kind: "percent"; percent: number };

export type StrategyType = StrategySpec["type"];

/** Fields every strategy has. */
export interface StrategyBase {
  /** Hosts deployed at once: a count ≥ 1 or a percent of the selected hosts. Default 1. */
  batch: CountOrPercent;
  /** Hosts that may fail before the rollout halts and rolls back. Default 0. */
  maxFailures: number;
  /** The whole rollout must finish within this, or it halts and rolls back. Default 30m. */
  progressDeadlineMs: number;
}

/** Per-host swaps: each host starts the idle color, gates on health, switches its own nginx. */
export interface BlueGreenStrategy extends StrategyBase {
  type: "bluegreen";
  /** How long the old color stays running after a switch, so a rollback is one switch. Default 10m. */
  keepPreviousMs: number;
  /** Judged on each batch's hosts after the batch switched; a failed analysis rolls back that batch and the ones before it. Absent: the health gate is the only check. */
  verify?: AnalysisSpec;
}

/** In place on one port, for hosts without room for a second copy; each host leaves the front LB while it restarts. No previous color is kept. */
export interface RollingStrategy extends StrategyBase {
  type: "rolling";
  /** As in bluegreen: judged on each batch's hosts once they are back in the LB; a failure rolls back that batch and the ones before it. */
  verify?: AnalysisSpec;
}

/** A few hosts first, a share of users sticky to them, then promote or abort. */
export interface CanaryStrategy extends StrategyBase {
  type: "canary";
  /** As in bluegreen. Default 10m. */
  keepPreviousMs: number;
  canary: CanarySpec;
}

/** Two host groups behind the front LB; deploy the idle group, then shift LB weight to it in steps. */
export interface FleetBlueGreenStrategy extends StrategyBase {
  type: "fleet-bluegreen";
  /** How long the old group keeps running after the last step. Default 10m. */
  keepPreviousMs: number;
  groups: FleetGroups;
  /** Percent of traffic on the new group at each step: increasing, 1..100, last is 100. Default [10, 50, 100]. */
  steps: number[];
  /** Wait between steps, watching health. Default 10s; 0 when `analysis` is given, which is the wait instead (a spec may not set both). */
  stepPauseMs: number;
  /** Judged on the new group at each weight step, in place of step_pause; a failed analysis shifts the traffic back to the old group. */
  analysis?: AnalysisSpec;
}

export type StrategySpec = BlueGreenStrategy | RollingStrategy | CanaryStrategy | FleetBlueGreenStrategy;

export interface CanarySpec {
  /** Hosts that get the new release first: a count or a percent of the selected hosts. Default 1. */
  hosts: CountOrPercent;
  /** Percent of users (0..100) the front LB sends to the canaries. 0 only with a pin. */
  weightPercent: number;
  /** Cookie that keeps a user who reached a canary on the canaries. Default `cutover_canary`. */
  cookie: string;
  /** A header or cookie whose value always routes a request to the canaries (testers, chosen users). */
  pin?: CanaryPin;
  /** How `cutover promote` rolls the rest of the fleet. Default bluegreen. */
  then: "bluegreen" | "rolling";
  /** Judged on the canary hosts: pass promotes by itself, fail aborts. Absent: wait for `cutover promote` or `cutover abort`. */
  analysis?: AnalysisSpec;
}

export interface CanaryPin {
  /** Where the LB looks: a request header or a cookie. */
  kind: "header" | "cookie";
  /** Header or cookie name. */
  name: string;
  /** The value that pins a request to the canaries. */
  value: string;
}

/**
 * A rollout analysis: `count` measurements, one every `intervalMs`, each over
 * the requests the hosts under test served in that interval. A measurement
 * fails when any check fails, and is inconclusive when it saw fewer than
 * `minRequests` requests or its Prometheus query gave no number. More than
 * `failureLimit` failed measurements fail the analysis at once; `count`
 * measurements without that pass it, unless one was inconclusive: then the
 * rollout pauses and says why, for the operator to continue or abort. At
 * least one of the three checks is set; `count × intervalMs` is less than the
 * strategy's progress deadline.
 */
export interface AnalysisSpec {
  /** Time between measurements, and the span each one covers. Default 10s, at least 1s; with only a `window` given, at most the window. */
  intervalMs: number;
  /** Measurements taken, ≥ 1: as given, or ceil(window / interval). Default 6. */
  count: number;
  /** Failed measurements tolerated, 0 ≤ failureLimit < count; one more fails the analysis. Default 0. */
  failureLimit: number;
  /** A measurement over fewer requests than this is inconclusive. 0: never for lack of traffic (no requests at all then pass the request checks). Default 10. */
  minRequests: number;
  /** Fails a measurement when (5xx + upstream connect errors and timeouts) / requests, in percent (0..100), is above this. */
  maxErrorRatePercent?: number;
  /** Fails a measurement when its p99 request latency is above this. */
  maxLatencyP99Ms?: number;
  /** Fails a measurement when the team's own Prometheus query does not meet its success condition. */
  prometheus?: PrometheusCheck;
}

/** How a Prometheus result is compared with a success value. */
export type Comparator = "<" | "<=" | ">" | ">=" | "==" | "!=";

/** A query against the team's Prometheus, run once per measurement. */
export interface PrometheusCheck {
  /** Base URL of the Prometheus server as written (http or https, maybe with a path prefix); no credentials, query string or fragment. */
  url: string;
  /** A PromQL expression on one line, at most 2000 characters; it should give one number (a scalar or exactly one series). */
  query: string;
  /** The measurement passes when `result <comparator> value`, e.g. `{ comparator: "<", value: 0.01 }` from `"< 0.01"`. */
  success: { comparator: Comparator; value: number };
}

export interface FleetGroups {
  /** Label key that splits the selected hosts into the two groups. */
  label: string;
  /** Label value of the blue group. */
  blue: string;
  /** Label value of the green group, not the blue value. */
  green: string;
}

export interface ResourcesSpec {
  /** Memory a host must have available before starting a second copy. */
  minFreeMemoryBytes?: number;
  /** Free disk the host needs for the release. */
  minFreeDiskBytes?: number;
  /** Highest load average per core (> 0) at which a host may be deployed. */
  maxLoad?: number;
}

export interface LimitsSpec {
  /** Memory limit per app process (> 0). */
  memoryBytes?: number;
  /** CPU limit per app process in cores (> 0), e.g. 0.5 or 2. */
  cpu?: number;
}

/** The spec's names of the hooks, as the agent and the events name them too. */
export type HookName = "pre_deploy" | "post_switch";

export interface HooksSpec {
  /**
   * Runs once per deploy, on one host (the first of the first batch), from the new release's
   * directory, as run.user with the app's environment, before any host switches (e.g. a database
   * migration). A failure (non-zero exit, timeout, cannot start) ends the deploy before any switch.
   */
  preDeploy?: HookSpec;
  /**
   * Runs on each host right after it switched to the new release, from the live release's
   * directory, as run.user with the app's environment. A failure fails that host: it is switched
   * back to its previous release and counts against max_failures.
   */
  postSwitch?: HookSpec;
}

export interface HookSpec {
  /** argv, executed without a shell; never empty. pre_deploy may use `${RELEASE}` and `${ADDRESS}`; post_switch also `${PORT}` and `${COLOR}` (the live color's). */
  command: string[];
  /** The hook's process group is killed (SIGKILL) at this and the hook fails. 1s..1h, less than the progress deadline. Default 5m (pre_deploy), 1m (post_switch). */
  timeoutMs: number;
}
