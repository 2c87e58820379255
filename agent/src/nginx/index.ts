// The nginx module of the agent: render site configs, drive an nginx (the agent's own
// master or the host's), and switch an app between colors without failing a request.

export { NGINX_ERROR_CODES, NginxError, isNginxError, type NginxErrorCode } from "./errors.js";
export {
  expectedUpstream,
  parseSiteHeader,
  validateSite,
  type SiteConfig,
  type SiteHeader,
  type SiteProtocol,
  type SwitchMode,
} from "./site.js";
export { renderSite, UPSTREAM_HEADER } from "./render.js";
export { loadProbeToken, PROBE_TOKEN_FILE, PROBE_TOKEN_HEADER } from "./probe-token.js";
export {
  managedPaths,
  renderManagedMain,
  renderSystemControl,
  type ManagedMainOptions,
  type ManagedPaths,
} from "./main-conf.js";
export type { NginxCapabilities } from "./capabilities.js";
export type { Candidates, Handover, NginxRunner, ReloadOptions, RunnerKind, SupportFile, TestResult } from "./runner.js";
export {
  createManagedRunner,
  ManagedNginx,
  type ManagedRunnerOptions,
  type ManagedRunnerState,
  type StartResult,
  type StopOptions,
} from "./managed.js";
export { createSystemRunner, SystemNginx, type SystemRunnerOptions } from "./system.js";
export { ensureSocketDir } from "./socket-dir.js";
export { readLivePort, type LivePortReading } from "./live-port.js";
export { tlsFingerprint, type VirtualHost } from "./virtual-host.js";
export {
  checkSiteClaims,
  pretestSwitch,
  removeSite,
  switchSite,
  warmSite,
  type SwitchOptions,
  type SwitchResult,
  type SwitchState,
  type SwitchTransition,
} from "./switch.js";

import type { ManagedNginx, ManagedRunnerOptions } from "./managed.js";
import { createManagedRunner } from "./managed.js";
import type { SystemNginx, SystemRunnerOptions } from "./system.js";
import { createSystemRunner } from "./system.js";

export type RunnerOptions = ({ mode: "managed" } & ManagedRunnerOptions) | ({ mode: "system" } & SystemRunnerOptions);

/** The runner factory: the agent's own master (managed) or the host's nginx (system). */
export function createNginxRunner(options: { mode: "managed" } & ManagedRunnerOptions): Promise<ManagedNginx>;
export function createNginxRunner(options: { mode: "system" } & SystemRunnerOptions): Promise<SystemNginx>;
export function createNginxRunner(options: RunnerOptions): Promise<ManagedNginx | SystemNginx> {
  const { mode, ...rest } = options;
  return mode === "managed" ? createManagedRunner(rest as ManagedRunnerOptions) : createSystemRunner(rest);
}
