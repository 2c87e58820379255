import type { cutover } from "@cutover/protocol";
import type { Color } from "./app-state.js";

/** A running app instance as the deploy transaction sees it. */
export interface InstanceHandle {
  app: string;
  color: Color;
  release: string;
  port: number;
  pid: number;
}

/**
 * What the deploy transaction needs from process supervision and health
 * checking; the agent wires the real modules in, unit tests a fake.
 */
export interface InstanceControl {
  /** Starts `release` of the app as `color` on that color's port, in `cwd`. */
  start(definition: cutover.v1.AppDefinition.$Properties, color: Color, release: string, cwd: string): Promise<InstanceHandle>;
  /** Resolves once the instance passes its health gate; rejects with a typed error (ERR_HEALTH_DEADLINE, ERR_PROCESS_EXITED_EARLY). */
  waitHealthy(handle: InstanceHandle, health: cutover.v1.HealthSpec.$Properties): Promise<void>;
  /** One health check, for a warm instance about to take traffic again. */
  checkOnce(handle: InstanceHandle, health: cutover.v1.HealthSpec.$Properties): Promise<boolean>;
  /** The instance of that color if its process is alive (re-adopted after an agent restart). */
  running(app: string, color: Color): InstanceHandle | undefined;
  /** Stops the color's instance (stop signal, then SIGKILL after the timeout); no-op when none runs. */
  stop(app: string, color: Color, signal: string, timeoutMs: number): Promise<void>;
  /** Resident memory of the instance's process, bytes (0 when unknown). */
  rssBytes(handle: InstanceHandle): number;
  /**
   * Called when an instance exits without stop() having been asked (a crash, an OOM kill, a kill by hand);
   * `reason` says why when the agent knows better than the signal ("memory limit exceeded (limit 64 MiB)").
   */
  onUnexpectedExit(listener: (handle: InstanceHandle, how: { exitCode?: number; signal?: string; reason?: string }) => void): void;
}
