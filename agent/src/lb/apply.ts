import { TimedTransaction, type Transition } from "../nginx/timed-transaction.js";
import { exclusive } from "../nginx/queue.js";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import type { NginxRunner, SwitchMode } from "../nginx/index.js";
import { isValidAppName } from "../nginx/site.js";
import { discardCandidate, promoteCandidate, readOrNull, restoreFile, SITE_FILE_MODE, writeCandidate } from "../nginx/site-files.js";
import { writeFileAtomic } from "../state/atomic-write.js";
import { lbRevision, normalizeLbSite, parseLbHeader, serializeLbState, type LbSiteConfig } from "./config.js";
import { confirmLbSite, DEFAULT_LB_CONFIRM_TIMEOUT_MS } from "./confirm.js";
import { isUnreachable, putLbState, restoreLbState } from "./control.js";
import { recordGenerations } from "./drain.js";
import { asLbError, LbError } from "./errors.js";
import { lbControlSocket, lbSitePath, MAX_UNIX_SOCKET_PATH } from "./names.js";
import { renderLbSite } from "./render.js";

/*
 * One change of an LB site is one transaction; every step goes through LbTransaction.transition().
 *
 *  reload path: planned ─▶ testing ─▶ activating ─▶ reloading ─▶ retiring ─▶ [setting-state] ─▶ confirming ─▶ done
 *  live path:   planned ─▶ setting-state ─▶ persisting ─▶ confirming ─▶ done
 *                               ├──▶ testing ─▶ …      (no control socket: the live file was never loaded;
 *                               └──▶ reloading ─▶ …     reload, re-testing it only when it changes)
 *  unchanged:   planned ─▶ verifying ─▶ done          (reload mode; the file is as wanted and serving)
 *                              └──▶ reloading ─▶ …     (it was written but never loaded)
 *
 *  planned/testing ─▶ failed: invalid, or nginx -t said no; nothing live was touched.
 *  every later step ─▶ rolling-back ─▶ failed: the previous file (and dict state) are put back.
 *
 *  [setting-state]: live mode after a reload. The dict outlives reloads, so until it is set
 *  the new workers route by the state that served until now (or, with an empty dict, by the
 *  new file's). live path: the file write of persisting finishes during confirming.
 */
export type LbApplyState =
  | "planned"
  | "verifying"
  | "testing"
  | "activating"
  | "reloading"
  | "retiring"
  | "setting-state"
  | "persisting"
  | "confirming"
  | "rolling-back"
  | "done"
  | "failed";

const TRANSITIONS: Record<LbApplyState, readonly LbApplyState[]> = {
  planned: ["testing", "setting-state", "verifying", "failed"],
  verifying: ["done", "reloading"],
  testing: ["activating", "failed"],
  activating: ["reloading", "rolling-back"],
  reloading: ["retiring", "rolling-back"],
  retiring: ["setting-state", "confirming", "rolling-back"],
  "setting-state": ["persisting", "confirming", "testing", "reloading", "rolling-back"],
  persisting: ["confirming", "rolling-back"],
  confirming: ["done", "rolling-back"],
  "rolling-back": ["failed"],
  done: [],
  failed: [],
};

export type LbTransition = Transition<LbApplyState>;

export interface ApplyLbOptions {
  /** Path requested through the LB to confirm, e.g. the app's health path. Default "/". */
  confirmPath?: string;
  confirmTimeoutMs?: number;
  /** Status the confirming requests must get; default: anything below 500. */
  expectStatus?: number;
  /** Take the reload path even when a live update or nothing would do (reconciling after a restart). */
  forceReload?: boolean;
  /** Called once per state change, e.g. to log `{from, to}` or stream an Event. */
  onTransition?: (transition: LbTransition) => void;
}

export interface ApplyLbResult {
  app: string;
  mode: SwitchMode;
  /** The master reloaded: reload mode, or live mode's first apply / a listen change. */
  reloaded: boolean;
  /** Wall time of the change, confirmation included. */
  durationMs: number;
  /** Part of durationMs spent waiting for nginx to retire the replaced workers (its fixed 100 ms); 0 without a reload. */
  handoverMs: number;
  /** lbRevision of the applied config: every answer through the LB now carries it. */
  revision: string;
  /** Milliseconds spent in each state. */
  steps: Partial<Record<LbApplyState, number>>;
}



function requireSupport(runner: NginxRunner, config: LbSiteConfig): void {
  if (config.switchMode === "live" && !runner.detectCapabilities().lua) {
    throw new LbError(
      "ERR_LB_LIVE_UNSUPPORTED",
      `LB site ${config.app}: live mode needs the nginx Lua module (Debian: libnginx-mod-http-lua); use switchMode "reload"`,
    );
  }
  if (!runner.isRunning()) {
    throw new LbError("ERR_LB_NOT_RUNNING", `nginx (${runner.kind}) is not running; start it before applying LB site ${config.app}`);
  }
}

function controlSocketFor(runner: NginxRunner, app: string): string {
  const socket = lbControlSocket(runner, app);
  if (socket.length > MAX_UNIX_SOCKET_PATH) {
    throw new LbError(
      "ERR_LB_INVALID_SITE",
      `LB site ${app}: control socket path ${socket} is longer than ${MAX_UNIX_SOCKET_PATH} bytes; use a shorter state dir or app name`,
    );
  }
  return socket;
}

async function rollBack(tx: TimedTransaction<LbApplyState>, error: unknown, undo: () => Promise<void>): Promise<never> {
  tx.transition("rolling-back");
  const failure = asLbError(error);
  try {
    await undo();
    failure.rolledBack = true;
  } catch (rollbackError) {
    failure.rollbackError = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
  }
  tx.transition("failed");
  throw failure;
}

/**
 * Makes the front LB of `config.app` route as `config` says, proves it through the LB's
 * listen address, and on any failure puts the previous config back before throwing an
 * LbError (with `rolledBack`). One change at a time per runner.
 */
export function applyLbSite(runner: NginxRunner, config: LbSiteConfig, options: ApplyLbOptions = {}): Promise<ApplyLbResult> {
  return exclusive(runner, () => runApply(runner, config, options));
}

interface Plan {
  runner: NginxRunner;
  tx: TimedTransaction<LbApplyState>;
  config: LbSiteConfig;
  path: string;
  socket: string;
  rendered: string;
  previous: string | null;
  previousConfig: LbSiteConfig | null;
  confirm(timeoutMs?: number): Promise<unknown>;
  result(reloaded: boolean): ApplyLbResult;
}

async function runApply(runner: NginxRunner, input: LbSiteConfig, options: ApplyLbOptions): Promise<ApplyLbResult> {
  const tx = new TimedTransaction<LbApplyState>("LB change", typeof input?.app === "string" ? input.app : "?", TRANSITIONS, "planned", performance.now(), options.onTransition);
  let plan: Plan;
  try {
    const config = normalizeLbSite(input);
    requireSupport(runner, config);
    const socket = controlSocketFor(runner, config.app);
    const path = lbSitePath(runner, config.app);
    const previous = readOrNull(path);
    plan = {
      runner,
      tx,
      config,
      path,
      socket,
      rendered: renderLbSite(config, { controlSocket: socket }),
      previous,
      previousConfig: previous === null ? null : parseLbHeader(previous),
      confirm: (timeoutMs = options.confirmTimeoutMs ?? DEFAULT_LB_CONFIRM_TIMEOUT_MS) =>
        confirmLbSite(config, {
          path: options.confirmPath ?? "/",
          timeoutMs,
          ...(options.expectStatus !== undefined ? { expectStatus: options.expectStatus } : {}),
        }),
      result: (reloaded) => ({
        app: config.app,
        mode: config.switchMode,
        reloaded,
        durationMs: tx.elapsed(),
        handoverMs: tx.steps.retiring ?? 0,
        revision: lbRevision(config),
        steps: tx.steps,
      }),
    };
  } catch (error) {
    tx.transition("failed");
    throw asLbError(error);
  }
  const { config, previous, previousConfig, rendered } = plan;

  // Live when only the state differs: the file with the previous state would be the previous file.
  const liveEligible =
    config.switchMode === "live" &&
    previousConfig?.switchMode === "live" &&
    previous === renderLbSite({ ...config, backends: previousConfig.backends, canary: previousConfig.canary }, { controlSocket: plan.socket });
  if (liveEligible && !options.forceReload) {
    const done = await liveApply(plan);
    if (done !== null) return done;
    return reloadApply(plan, previous === rendered);
  }
  if (previous === rendered && !options.forceReload) {
    tx.transition("verifying");
    const loaded = await plan.confirm(0).then(
      () => true,
      () => false,
    );
    if (loaded) {
      tx.transition("done");
      recordGenerations(runner, config.app, null);
      return plan.result(false);
    }
    return reloadApply(plan, true);
  }
  return reloadApply(plan, false);
}

/**
 * No reload: the dict gets the new state, which every worker routes by from its next
 * request; the file gets it too, so an nginx restart keeps it. The file differs from the
 * tested one only in the state (checked by re-rendering), which is validated data inside
 * a Lua string, so it is not re-tested: `nginx -t` alone would cost several times the
 * live budget. Resolves null when the site's control socket is not there (the file was
 * written but never loaded): the caller reloads instead.
 */
async function liveApply(plan: Plan): Promise<ApplyLbResult | null> {
  const { tx, socket, path, previous, rendered } = plan;
  tx.transition("setting-state");
  let before: string | null;
  try {
    before = await putLbState(socket, serializeLbState(plan.config));
  } catch (error) {
    if (isUnreachable(error)) return null;
    return rollBack(tx, error, async () => undefined);
  }
  let persisted: Promise<void> = Promise.resolve();
  try {
    tx.transition("persisting");
    if (previous !== rendered) persisted = writeFileAtomic(path, rendered, SITE_FILE_MODE);
    tx.transition("confirming");
    await Promise.all([persisted, plan.confirm()]);
    tx.transition("done");
  } catch (error) {
    await persisted.catch(() => undefined); // never restore under a write still in flight
    return rollBack(tx, error, async () => {
      await restoreLbState(socket, before);
      await restoreFile(path, previous);
    });
  }
  recordGenerations(plan.runner, plan.config.app, null);
  return plan.result(false);
}

/** nginx -t with the candidate in place → rename → reload → (live: set the dict) → confirm; any failure restores. */
async function reloadApply(plan: Plan, unchanged: boolean): Promise<ApplyLbResult> {
  const { runner, tx, config, path, previous, socket } = plan;
  if (!unchanged) {
    tx.transition("testing");
    try {
      const verdict = await runner.test(new Map([[path, await writeCandidate(path, plan.rendered)]]));
      if (!verdict.ok) {
        throw new LbError(
          "ERR_LB_TEST_FAILED",
          `LB site ${config.app}: nginx -t rejected the new config; the live config is unchanged. Fix the site and retry`,
          { output: verdict.output },
        );
      }
    } catch (error) {
      await discardCandidate(path);
      tx.transition("failed");
      throw asLbError(error);
    }
    tx.transition("activating");
  }

  let activated = false;
  let reloadSent = false;
  let stateBefore: string | null | undefined;
  try {
    if (!unchanged) {
      await promoteCandidate(path);
      activated = true;
    }
    if (config.switchMode === "live") mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
    tx.transition("reloading");
    reloadSent = true;
    const handover = await runner.reload();
    tx.transition("retiring");
    await runner.retired(handover);
    recordGenerations(runner, config.app, handover);
    if (config.switchMode === "live") {
      tx.transition("setting-state");
      stateBefore = await putLbState(socket, serializeLbState(config));
    }
    tx.transition("confirming");
    await plan.confirm();
    tx.transition("done");
  } catch (error) {
    return rollBack(tx, error, async () => {
      if (activated) await restoreFile(path, previous);
      if (reloadSent && activated) {
        const handover = await runner.reload({ failFast: false });
        await runner.retired(handover);
        recordGenerations(runner, config.app, handover);
      }
      // The dict survives reloads; it is only read (and reachable) when the restored config is live.
      if (stateBefore !== undefined && plan.previousConfig?.switchMode === "live") await restoreLbState(socket, stateBefore);
    });
  }
  return plan.result(true);
}

/**
 * Removes an app's LB site after testing the config without it, and reloads (its dict
 * and control socket go with it). Resolves false when there was nothing to remove.
 */
export function removeLbSite(runner: NginxRunner, app: string): Promise<boolean> {
  return exclusive(runner, async () => {
    if (!isValidAppName(app)) throw new LbError("ERR_LB_INVALID_SITE", `invalid app name ${JSON.stringify(app)}`);
    const path = lbSitePath(runner, app);
    const previous = readOrNull(path);
    if (previous === null) return false;
    const verdict = await runner.test(new Map([[path, null]]));
    if (!verdict.ok) {
      throw new LbError("ERR_LB_TEST_FAILED", `removing LB site ${app}: nginx -t fails without it; nothing was removed`, {
        output: verdict.output,
      });
    }
    await restoreFile(path, null);
    try {
      if (runner.isRunning()) {
        const handover = await runner.reload();
        await runner.retired(handover);
        recordGenerations(runner, app, handover);
      }
    } catch (error) {
      const failure = asLbError(error);
      try {
        await restoreFile(path, previous);
        await runner.retired(await runner.reload({ failFast: false }));
        failure.rolledBack = true;
      } catch (rollbackError) {
        failure.rollbackError = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw failure;
    }
    return true;
  });
}
