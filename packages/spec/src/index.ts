export { parseSpec, parseSpecFile } from "./parse.js";
export type { ParseSpecOptions } from "./parse.js";
export { SpecError } from "./errors.js";
export type { SpecIssue } from "./errors.js";
export { parseDuration, parseSize, resolveCount } from "./units.js";
export { SPEC_EXAMPLE } from "./example.js";
export { ALLOWED_PROXY_DIRECTIVES, checkProxyDirective, type DirectiveCheck } from "./directives.js";
export { isUrlPath } from "./url-path.js";
export { isSecretRef, secretNamesOf } from "./secrets.js";
export { isServerName, isTlsPath, MAX_SERVER_NAMES } from "./virtual-host.js";
export type {
  AppSpec,
  ArtifactSpec,
  RunSpec,
  EnvValue,
  SecretRef,
  StopSignal,
  PortsSpec,
  ProxySpec,
  VirtualHostSpec,
  TlsSpec,
  TlsFile,
  HealthSpec,
  HealthCheck,
  LabelSelector,
  LbSpec,
  CountOrPercent,
  StrategyType,
  StrategySpec,
  StrategyBase,
  BlueGreenStrategy,
  RollingStrategy,
  CanaryStrategy,
  FleetBlueGreenStrategy,
  CanarySpec,
  CanaryPin,
  AnalysisSpec,
  Comparator,
  PrometheusCheck,
  FleetGroups,
  ResourcesSpec,
  LimitsSpec,
  HookName,
  HooksSpec,
  HookSpec,
} from "./types.js";
export { HOOK_VARIABLES, MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT_MS, MIN_HOOK_TIMEOUT_MS } from "./hooks.js";
export { starterSpec } from "./starter.js";
