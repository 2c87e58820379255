import type { SupervisorState } from "../process/index.js";
import type { Color } from "./app-state.js";
import type { AppDefinition } from "./definition.js";

/** A running app color as the deploy transaction sees it. */
export interface ColorHandle {
  app: string;
  color: Color;
  release: string;
  port: number;
  pid: number;
}

/** What a heartbeat says about one app color: its supervisor's state (AppInstance.state in resources.proto). */
export interface ColorReport {
  state: SupervisorState;
  release: string;
  pid: number;
  rssBytes: number;
}

/** How a release is started again: its definition and its release dir (fetched again if pruned). */
export interface ReleaseLaunch {
  definition: AppDefinition;
  releaseDir: () => Promise<string>;
}

/**
 * What the deploy transaction needs from the app colors' supervisors
 * (apps/supervisors.ts wires process/supervisor.ts to the process, limits and
 * health modules; unit tests use a fake). Restarts after a crash are the
 * supervisors' own business.
 */
export interface ProcessControl {
  /** Starts `release` of the app as `color` on that color's port, in `cwd`; resolves once it runs. */
  start(definition: AppDefinition, color: Color, release: string, cwd: string): Promise<ColorHandle>;
  /** Resolves once the started color passes its health gate; rejects with a typed error (ERR_HEALTH_DEADLINE, ERR_PROCESS_EXITED_EARLY, ERR_LIMITS_MEMORY_EXCEEDED). */
  waitHealthy(handle: ColorHandle): Promise<void>;
  /** The address the colors listen on (the host's). */
  readonly address: string;
  /** True when nothing listens on the port at that address: a color's port must be free before it starts. */
  portIsFree(port: number): Promise<boolean>;
  /** One health check, for a warm color about to take traffic again. */
  checkOnce(handle: ColorHandle): Promise<boolean>;
  /**
   * After an agent restart: supervises the color's process again if its record
   * names a live one (else deletes the record). In service: health-gated and
   * restarted on a crash; out of service: draining.
   */
  adopt(app: string, color: Color, options: { inService: boolean; launchOf: (release: string) => ReleaseLaunch }): ColorHandle | undefined;
  /** The color's process while it is alive. */
  running(app: string, color: Color): ColorHandle | undefined;
  /** nginx no longer points at the color: its crashes are not restarted. */
  drain(app: string, color: Color): void;
  /** nginx points at the color now: health checked, restarted on a crash. */
  serve(app: string, color: Color): void;
  /** Stops the color's process (stop signal, then SIGKILL after the timeout); no-op when none runs. */
  stop(app: string, color: Color, signal: string, timeoutMs: number): Promise<void>;
  /** The color's state for a heartbeat; undefined when it has no supervisor (never started, or stopped). */
  report(app: string, color: Color): ColorReport | undefined;
  /** Called when a color's process exits without stop() (a crash, an OOM kill, a kill by hand); `cause` says why. */
  onUnexpectedExit(listener: (handle: ColorHandle, cause: string) => void): void;
  /** Called when a crashed color was started again and passed its health gate. */
  onRestarted(listener: (handle: ColorHandle) => void): void;
}
