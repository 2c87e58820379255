import { TimedTransaction, type Transition } from "./timed-transaction.js";
import { exclusive } from "./queue.js";
import { performance } from "node:perf_hooks";
import { confirmSwitch, DEFAULT_CONFIRM_TIMEOUT_MS } from "./confirm.js";
import { clearLivePort, getLivePort, setLivePort } from "./control.js";
import { NginxError } from "./errors.js";
import { renderSite } from "./render.js";
import type { NginxRunner } from "./runner.js";
import {
  isValidAppName,
  parseSiteHeader,
  type SiteConfig,
  type SiteHeader,
  type SiteProtocol,
  type SwitchMode,
} from "./site.js";
import {
  discardCandidate,
  promoteCandidate,
  readOrNull,
  restoreFile,
  SITE_FILE_MODE,
  writeCandidate,
} from "./site-files.js";
import { writeFileAtomic } from "../state/atomic-write.js";

/*
 * One switch is one transaction; every step goes through SwitchTransaction.transition().
 *
 *  reload path:  planned ─▶ testing ─▶ activating ─▶ reloading ─▶ retiring ─▶ [setting-port] ─▶ confirming ─▶ done
 *  live path:    planned ─▶ setting-port ─▶ persisting ─▶ confirming ─▶ done
 *  unchanged:    planned ─▶ verifying ─▶ done       (reload mode, the file is already as wanted and serving)
 *                              └──────▶ reloading ─▶ …  (it was written but never loaded)
 *
 *  testing ─▶ failed: nginx -t said no; nothing live was touched.
 *  every later step ─▶ rolling-back ─▶ failed: the previous files (and dict entry) are put back.
 *
 *  retiring: nginx keeps the replaced workers accepting for 100 ms after a reload; only
 *  once they stop does every new connection get the new config, and only then may the
 *  caller drain and stop the old color. [setting-port] runs when a Lua dict entry exists
 *  or is needed; in the live path the file write of persisting finishes during confirming.
 */
export type SwitchState =
  | "planned"
  | "verifying"
  | "testing"
  | "activating"
  | "reloading"
  | "retiring"
  | "setting-port"
  | "persisting"
  | "confirming"
  | "rolling-back"
  | "done"
  | "failed";

const TRANSITIONS: Record<SwitchState, readonly SwitchState[]> = {
  planned: ["testing", "setting-port", "verifying", "failed"],
  verifying: ["done", "reloading"],
  testing: ["activating", "failed"],
  activating: ["reloading", "rolling-back"],
  reloading: ["retiring", "rolling-back"],
  retiring: ["setting-port", "confirming", "rolling-back"],
  "setting-port": ["persisting", "confirming", "rolling-back"],
  persisting: ["confirming", "rolling-back"],
  confirming: ["done", "rolling-back"],
  "rolling-back": ["failed"],
  done: [],
  failed: [],
};

export type SwitchTransition = Transition<SwitchState>;

export interface SwitchOptions {
  /** Path requested through the proxy to confirm, e.g. the app's health path. Default "/". */
  confirmPath?: string;
  confirmTimeoutMs?: number;
  /** Status the confirming request must get; default: anything below 500. */
  expectStatus?: number;
  /**
   * Take the reload path even when a live switch or nothing would do: for reconciling
   * after an agent restart, when a file may have been written but never loaded.
   */
  forceReload?: boolean;
  /** Called once per state change, e.g. to log `{from, to}` or stream an Event. */
  onTransition?: (transition: SwitchTransition) => void;
}

export interface SwitchResult {
  app: string;
  mode: SwitchMode;
  /** The master reloaded: reload mode, or live mode's first deploy / structure change. */
  reloaded: boolean;
  /** Wall time of the switch, confirmation included (performance.now()). */
  durationMs: number;
  /**
   * Part of durationMs spent waiting for nginx to retire the replaced workers (its fixed
   * 100 ms pause after a reload); 0 in live mode. durationMs - handoverMs is the agent's work.
   */
  handoverMs: number;
  /** The port that served before the switch, when known. */
  previousPort: number | null;
  /** Milliseconds spent in each state: where the budget went. */
  steps: Partial<Record<SwitchState, number>>;
}


// One switch at a time per runner: candidates, the test config and reloads are shared.
function asNginxError(error: unknown): NginxError {
  if (error instanceof NginxError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new NginxError("ERR_NGINX_IO_FAILED", `nginx config change failed: ${message}`, { cause: error });
}

function otherProtocol(protocol: SiteProtocol): SiteProtocol {
  return protocol === "http" ? "tcp" : "http";
}

/** The file of `app` for `protocol`, or null when this runner cannot have one (no stream dir). */
function pathOrNull(runner: NginxRunner, app: string, protocol: SiteProtocol): string | null {
  try {
    return runner.sitePath(app, protocol);
  } catch {
    return null;
  }
}

function requireSupport(runner: NginxRunner, site: SiteConfig): void {
  const capabilities = runner.detectCapabilities();
  if (site.switchMode === "live" && !capabilities.lua) {
    throw new NginxError(
      "ERR_NGINX_LIVE_UNSUPPORTED",
      `site ${site.app}: live switching needs the nginx Lua module (Debian: libnginx-mod-http-lua); use switchMode "reload"`,
    );
  }
  if (site.protocol === "tcp" && !capabilities.stream) {
    throw new NginxError(
      "ERR_NGINX_STREAM_UNSUPPORTED",
      `tcp site ${site.app} needs the nginx stream module (Debian: libnginx-mod-stream)`,
    );
  }
  if (!runner.isRunning()) {
    throw new NginxError("ERR_NGINX_NOT_RUNNING", `nginx (${runner.kind}) is not running; start it before switching ${site.app}`);
  }
}

interface FileChange {
  path: string;
  /** New content, or null to remove the file. */
  next: string | null;
  previous: string | null;
}

/**
 * Points `next.app`'s proxy at `next.livePort`, proves it through the proxy, and on any
 * failure puts the previous config back before throwing an NginxError (with `rolledBack`).
 * The caller guarantees `next.livePort` passed its health gate.
 */
export function switchSite(runner: NginxRunner, next: SiteConfig, options: SwitchOptions = {}): Promise<SwitchResult> {
  return exclusive(runner, () => runSwitch(runner, next, options));
}

async function runSwitch(runner: NginxRunner, next: SiteConfig, options: SwitchOptions): Promise<SwitchResult> {
  const tx = new TimedTransaction<SwitchState>("switch", next.app, TRANSITIONS, "planned", performance.now(), options.onTransition);
  const rendered = renderSite(next);
  requireSupport(runner, next);
  const path = runner.sitePath(next.app, next.protocol);
  const previous = readOrNull(path);
  const previousHeader = previous === null ? null : parseSiteHeader(previous);
  const strayPath = pathOrNull(runner, next.app, otherProtocol(next.protocol));
  const stray = strayPath === null ? null : readOrNull(strayPath);

  const changes: FileChange[] = [];
  if (previous !== rendered) changes.push({ path, next: rendered, previous });
  if (strayPath !== null && stray !== null) changes.push({ path: strayPath, next: null, previous: stray });
  if (next.switchMode === "live") {
    for (const file of runner.liveSupportFiles()) {
      const current = readOrNull(file.path);
      if (current !== file.content) changes.push({ path: file.path, next: file.content, previous: current });
    }
  }

  const liveEligible =
    next.switchMode === "live" &&
    previous !== null &&
    previousHeader?.mode === "live" &&
    changes.every((change) => change.path === path) &&
    previous === renderSite({ ...next, livePort: previousHeader.livePort });

  const confirm: Confirm = () =>
    confirmSwitch(next, {
      path: options.confirmPath ?? "/",
      timeoutMs: options.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS,
      ...(options.expectStatus !== undefined ? { expectStatus: options.expectStatus } : {}),
    });
  const result = (reloaded: boolean, previousPort: number | null): SwitchResult => ({
    app: next.app,
    mode: next.switchMode,
    reloaded,
    durationMs: tx.elapsed(),
    handoverMs: tx.steps.retiring ?? 0,
    previousPort,
    steps: tx.steps,
  });

  if (liveEligible && !options.forceReload) {
    return liveSwitch(runner, tx, next, path, previous, rendered, confirm, result);
  }
  if (changes.length === 0 && !options.forceReload && next.protocol === "http") {
    // Already written: one probe tells whether it is also loaded.
    tx.transition("verifying");
    const loaded = await confirmSwitch(next, {
      path: options.confirmPath ?? "/",
      timeoutMs: 0,
      ...(options.expectStatus !== undefined ? { expectStatus: options.expectStatus } : {}),
    }).then(
      () => true,
      () => false,
    );
    if (loaded) {
      tx.transition("done");
      return result(false, previousHeader?.livePort ?? null);
    }
    return reloadSwitch(runner, tx, next, [], confirm, result, previousHeader, true);
  }
  tx.transition("testing");
  const strayHeader = stray === null ? null : parseSiteHeader(stray);
  return reloadSwitch(runner, tx, next, changes, confirm, result, previousHeader ?? strayHeader, false);
}

type Confirm = () => Promise<unknown>;
type MakeResult = (reloaded: boolean, previousPort: number | null) => SwitchResult;

async function rollBack(tx: TimedTransaction<SwitchState>, error: unknown, undo: () => Promise<void>): Promise<never> {
  tx.transition("rolling-back");
  const failure = asNginxError(error);
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
 * No reload: the dict entry moves every worker's next request to the new port; the file
 * gets the new fallback so an nginx restart keeps the color. The file differs from the
 * tested one only in that port (checked by re-rendering), so it is not re-tested: a
 * 20 ms `nginx -t` would be four times the live budget.
 */
async function liveSwitch(
  runner: NginxRunner,
  tx: TimedTransaction<SwitchState>,
  next: SiteConfig,
  path: string,
  previous: string,
  rendered: string,
  confirm: Confirm,
  result: MakeResult,
): Promise<SwitchResult> {
  tx.transition("setting-port");
  let before: number | null | undefined;
  let persisted: Promise<void> = Promise.resolve();
  try {
    before = await setLivePort(runner.controlSocket, next.app, next.livePort);
    tx.transition("persisting");
    if (previous !== rendered) persisted = writeFileAtomic(path, rendered, SITE_FILE_MODE);
    // The write's fsyncs overlap the confirmation; both must succeed.
    tx.transition("confirming");
    await Promise.all([persisted, confirm()]);
    tx.transition("done");
  } catch (error) {
    await persisted.catch(() => undefined); // never restore under a write still in flight
    return rollBack(tx, error, async () => {
      if (before !== undefined) {
        if (before === null) await clearLivePort(runner.controlSocket, next.app);
        else await setLivePort(runner.controlSocket, next.app, before);
      }
      await restoreFile(path, previous);
    });
  }
  return result(false, before ?? parseSiteHeader(previous)?.livePort ?? null);
}

/** render → nginx -t with the candidates in place → rename → reload → confirm; any failure restores. */
async function reloadSwitch(
  runner: NginxRunner,
  tx: TimedTransaction<SwitchState>,
  next: SiteConfig,
  changes: readonly FileChange[],
  confirm: Confirm,
  result: MakeResult,
  previousHeader: SiteHeader | null,
  unchanged: boolean,
): Promise<SwitchResult> {
  if (!unchanged) {
    try {
      const candidates = new Map<string, string | null>();
      for (const change of changes) {
        candidates.set(change.path, change.next === null ? null : await writeCandidate(change.path, change.next));
      }
      const verdict = await runner.test(candidates);
      if (!verdict.ok) {
        throw new NginxError(
          "ERR_NGINX_TEST_FAILED",
          `site ${next.app}: nginx -t rejected the new config; the live config is unchanged. Fix the site (extraDirectives?) and retry`,
          { output: verdict.output },
        );
      }
    } catch (error) {
      for (const change of changes) await discardCandidate(change.path);
      tx.transition("failed");
      throw asNginxError(error);
    }
    tx.transition("activating");
  }

  const activated: FileChange[] = [];
  const capabilities = runner.detectCapabilities();
  let dictBefore: number | null | undefined;
  let reloadSent = false;
  try {
    for (const change of changes) {
      if (change.next === null) await restoreFile(change.path, null);
      else await promoteCandidate(change.path);
      activated.push(change);
    }
    tx.transition("reloading");
    reloadSent = true;
    const handover = await runner.reload();
    tx.transition("retiring");
    await runner.retired(handover);
    // Workers read the dict before their rendered port: make it agree with the new config
    // (live), or drop an entry nothing reads any more (left live mode). Only now: until
    // the old workers retire they read the dict too, with their old upstream address.
    // Meanwhile new workers may use the old dict entry: the color serving until now.
    if (capabilities.lua && (next.switchMode === "live" || previousHeader?.mode === "live")) {
      tx.transition("setting-port");
      dictBefore =
        next.switchMode === "live"
          ? await setLivePort(runner.controlSocket, next.app, next.livePort)
          : await clearLivePort(runner.controlSocket, next.app);
    }
    tx.transition("confirming");
    await confirm();
    tx.transition("done");
  } catch (error) {
    return rollBack(tx, error, async () => {
      for (const change of activated.reverse()) await restoreFile(change.path, change.previous);
      if (reloadSent && activated.length > 0) await runner.retired(await runner.reload({ failFast: false }));
      if (dictBefore !== undefined) {
        if (dictBefore === null) await clearLivePort(runner.controlSocket, next.app);
        else await setLivePort(runner.controlSocket, next.app, dictBefore);
      }
    });
  }
  return result(true, previousHeader?.livePort ?? null);
}

/**
 * Removes an app's site (both protocols' files) after testing the config without it,
 * reloads, and drops its live-dict entry. Resolves false when there was nothing to remove.
 */
export function removeSite(runner: NginxRunner, app: string): Promise<boolean> {
  return exclusive(runner, async () => {
    const files = (["http", "tcp"] as const)
      .map((protocol) => pathOrNull(runner, app, protocol))
      .filter((path): path is string => path !== null)
      .map((path) => ({ path, previous: readOrNull(path) }))
      .filter((file): file is { path: string; previous: string } => file.previous !== null);
    if (files.length === 0) return false;
    const verdict = await runner.test(new Map(files.map((file) => [file.path, null])));
    if (!verdict.ok) {
      throw new NginxError("ERR_NGINX_TEST_FAILED", `removing site ${app}: nginx -t fails without it; nothing was removed`, {
        output: verdict.output,
      });
    }
    for (const file of files) await restoreFile(file.path, null);
    try {
      if (runner.isRunning()) await runner.retired(await runner.reload());
    } catch (error) {
      const failure = asNginxError(error);
      try {
        for (const file of files) await restoreFile(file.path, file.previous);
        await runner.retired(await runner.reload({ failFast: false }));
        failure.rolledBack = true;
      } catch (rollbackError) {
        failure.rollbackError = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw failure;
    }
    if (runner.detectCapabilities().lua && runner.isRunning()) await clearLivePort(runner.controlSocket, app);
    return true;
  });
}

/** What is known about an app's live port, for re-adoption after an agent restart. */
export interface LivePortReading {
  /** Port rendered in the site file: what a restarted nginx serves. Null without a file. */
  file: number | null;
  /** The live dict's entry (live mode, running nginx with Lua), else null. */
  dict: number | null;
  /** The port serving now: the dict's entry in live mode when set, else the file's. */
  serving: number | null;
  mode: SwitchMode | null;
}

export async function readLivePort(runner: NginxRunner, app: string): Promise<LivePortReading> {
  if (!isValidAppName(app)) throw new NginxError("ERR_NGINX_INVALID_SITE", `invalid app name ${JSON.stringify(app)}`);
  let header: SiteHeader | null = null;
  for (const protocol of ["http", "tcp"] as const) {
    const path = pathOrNull(runner, app, protocol);
    const text = path === null ? null : readOrNull(path);
    header = text === null ? null : parseSiteHeader(text);
    if (header !== null) break;
  }
  const dict =
    header?.mode === "live" && runner.detectCapabilities().lua && runner.isRunning()
      ? await getLivePort(runner.controlSocket, app)
      : null;
  return {
    file: header?.livePort ?? null,
    dict,
    serving: dict ?? header?.livePort ?? null,
    mode: header?.mode ?? null,
  };
}
