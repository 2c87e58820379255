import { type ChangeOptions, type ChangeResult, type ChangeState, type FileChange, type Plan, probeOptions, runChange } from "./change.js";
import { exclusive } from "./queue.js";
import { removeFiles } from "./removal.js";
import { confirmSwitch, DEFAULT_CONFIRM_TIMEOUT_MS, provesSwitch } from "./confirm.js";
import { clearLivePort, setLivePort, switchLivePort, warmLivePort } from "./control.js";
import { NginxError } from "./errors.js";
import { renderSite } from "./render.js";
import type { NginxRunner } from "./runner.js";
import { parseSiteHeader, probeHostName, siteClaims, type SiteConfig, type SiteProtocol, validateSite } from "./site.js";
import { planClaims } from "./virtual-host.js";
import { discardCandidate, pendingPath, readOrNull, sitePathOrNull, writeCandidate } from "./site-files.js";
import type { Transition } from "./timed-transaction.js";
import { rmSync } from "node:fs";
import { rm } from "node:fs/promises";

// An app site's switch between colors, as a Plan for the nginx change runner (change.ts,
// which draws the states). Its dict holds the app's live port: "setting-port".

export type SwitchState = ChangeState<"setting-port">;
export type SwitchTransition = Transition<SwitchState>;
export type SwitchOptions = ChangeOptions<"setting-port">;

export interface SwitchResult extends ChangeResult<SwitchState> {
  /** The port that served before the switch, when known. */
  previousPort: number | null;
  /**
   * Settles (never rejects) once the live fallback file is durable: null, or the error that
   * kept it from being written. A live switch resolves before it; stop the old color only
   * after it. Null at once for a reload switch.
   */
  persisted: Promise<Error | null>;
}

const SITE_CHANGE = { what: "switch", setStep: "setting-port" as const, asError: asNginxError };

function asNginxError(error: unknown): NginxError {
  if (error instanceof NginxError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new NginxError("ERR_NGINX_IO_FAILED", `nginx config change failed: ${message}`, { cause: error });
}

function otherProtocol(protocol: SiteProtocol): SiteProtocol {
  return protocol === "http" ? "tcp" : "http";
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

/**
 * Points `next.app`'s proxy at `next.livePort`, proves it through the proxy, and on any
 * failure puts the previous config back before throwing an NginxError (with `rolledBack`).
 * The caller guarantees `next.livePort` passed its health gate. A live switch resolves once
 * the dict is set and confirmed; its fallback file follows (`persisted`).
 */
export async function switchSite(runner: NginxRunner, next: SiteConfig, options: SwitchOptions = {}): Promise<SwitchResult> {
  let previousPort = (): number | null => null;
  const outcome = await runChange(
    runner,
    SITE_CHANGE,
    next.app,
    () => {
      const planned = planSwitch(runner, next, options);
      // A copy left by a fallback write that failed is for a dict this switch replaces.
      if (planned.plan.route !== "live") rmSync(pendingPath(runner.sitePath(next.app, next.protocol)), { force: true });
      previousPort = planned.previousPort;
      return planned.plan;
    },
    options,
  );
  return { app: next.app, mode: next.switchMode, previousPort: previousPort(), ...outcome };
}

/** What the switch changes, read from the files as they are, and the port that served before it. Changes nothing. */
function planSwitch(runner: NginxRunner, next: SiteConfig, options: SwitchOptions) {
  const rendered = renderSite(next, runner.probeToken);
  requireSupport(runner, next);
  const path = runner.sitePath(next.app, next.protocol);
  const previous = readOrNull(path);
  const previousHeader = previous === null ? null : parseSiteHeader(previous);
  const strayPath = sitePathOrNull(runner, next.app, otherProtocol(next.protocol));
  const stray = strayPath === null ? null : readOrNull(strayPath);

  const files: FileChange[] = [];
  if (previous !== rendered) files.push({ path, next: rendered, previous });
  if (strayPath !== null && stray !== null) files.push({ path: strayPath, next: null, previous: stray });
  // Refuses a name or port another site of this nginx holds; the port's 404 server changes with it.
  files.push(...planClaims(runner, `app ${next.app}`, siteClaims(next), [path, ...(strayPath === null ? [] : [strayPath])]));
  if (next.switchMode === "live") {
    for (const file of runner.liveSupportFiles()) {
      const current = readOrNull(file.path);
      if (current !== file.content) files.push({ path: file.path, next: file.content, previous: current });
    }
  }
  // Live when only the port differs: the file with the previous port would be the previous file.
  const liveEligible =
    next.switchMode === "live" &&
    previousHeader?.mode === "live" &&
    files.every((file) => file.path === path) &&
    previous === renderSite({ ...next, livePort: previousHeader.livePort }, runner.probeToken);
  const route: Plan["route"] = options.forceReload
    ? "reload"
    : liveEligible
      ? "live"
      : files.length === 0 && next.protocol === "http"
        ? "verify"
        : "reload";
  const socket = runner.controlSocket;
  const lua = runner.detectCapabilities().lua;
  const leavesLive = next.switchMode === "reload" && previousHeader?.mode === "live";
  const filePort = (previousHeader ?? (stray === null ? null : parseSiteHeader(stray)))?.livePort ?? null;
  let dictBefore: number | null = null;

  const plan: Plan = {
    app: next.app,
    route,
    files,
    live: {
      // One call sets the dict and proves it through the app's upstream (control.ts).
      async set() {
        const probe = { path: options.confirmPath ?? "/", host: probeHostName(next) };
        try {
          const { previous, probe: answer } = await switchLivePort(socket, next.app, next.livePort, probe);
          dictBefore = previous;
          return { undo: () => restoreLivePort(socket, next.app, previous), confirmed: provesSwitch(next, answer, options.expectStatus) };
        } catch (error) {
          // The answer may be lost after nginx set the dict: back to the port the file serves.
          await restoreLivePort(socket, next.app, filePort).catch(() => undefined);
          throw error;
        }
      },
      fallback: files[0] ?? null,
      persist: "after-done",
    },
    // Workers read the dict before their rendered port: make it agree with the new config
    // (live), or drop an entry nothing reads any more (left live mode).
    setAfterReload:
      lua && (next.switchMode === "live" || leavesLive)
        ? async () => {
            const before = next.switchMode === "live" ? await setLivePort(socket, next.app, next.livePort) : await clearLivePort(socket, next.app);
            return () => restoreLivePort(socket, next.app, before);
          }
        : null,
    confirm: (timeoutMs = options.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS, connection = "fresh") =>
      confirmSwitch(next, { ...probeOptions(options, timeoutMs), connection, probeToken: runner.probeToken }),
    testFailed: (output) =>
      new NginxError(
        "ERR_NGINX_TEST_FAILED",
        `site ${next.app}: nginx -t rejected the new config; the live config is unchanged. Fix the site (extraDirectives?) and retry`,
        { output },
      ),
  };
  return { plan, previousPort: () => dictBefore ?? filePort };
}

async function restoreLivePort(socket: string, app: string, before: number | null): Promise<void> {
  if (before === null) await clearLivePort(socket, app);
  else await setLivePort(socket, app, before);
}

/**
 * Throws ERR_NGINX_VHOST_CLASH when `next` claims a name or port another site of this nginx
 * holds (virtual-host.ts); changes nothing. A deploy asks before it starts anything; the
 * switch checks again, in its queue.
 */
export function checkSiteClaims(runner: NginxRunner, next: SiteConfig): void {
  validateSite(next);
  planClaims(runner, `app ${next.app}`, siteClaims(next), [runner.sitePath(next.app, next.protocol)]);
}

/**
 * While the new color boots: tests the config a switch of `next` would load, with its
 * candidates beside the live files (removed again), so the switch itself finds its
 * `nginx -t` already answered for the same bytes (a managed nginx remembers passing inputs,
 * test-memo.ts) and reloads without waiting for one. Resolves with nginx's verdict, or null
 * when that switch would not test (live, or nothing to change). Touches no live file; the
 * switch still tests anything that changed since.
 */
export function pretestSwitch(runner: NginxRunner, next: SiteConfig, options: SwitchOptions = {}): Promise<boolean | null> {
  return exclusive(runner, async () => {
    const { plan } = planSwitch(runner, next, options);
    if (plan.route !== "reload" || plan.files.length === 0) return null;
    const candidates = new Map<string, string | null>();
    try {
      for (const file of plan.files) candidates.set(file.path, file.next === null ? null : writeCandidate(file.path, file.next));
      return (await runner.test(candidates)).ok;
    } finally {
      for (const file of plan.files) await discardCandidate(file.path);
    }
  });
}

/** Connections a warm-up leaves to the new color: a few more than a host's proxy has users at the same instant in the swap bench. */
export const WARM_CONNECTIONS = 8;

/**
 * Before a live switch of `next.app` to `next.livePort` (which passed its health gate):
 * nginx opens WARM_CONNECTIONS kept-alive connections to it through the app's upstream, with
 * the confirming probe as their request, so the users the switch moves there find them
 * ready (control.ts, warmLivePort). Resolves with the probes' statuses, or null when the
 * switch will not be live (no live file loaded, no Lua, nginx not running): there is nothing
 * to warm, as a reload starts workers with empty pools. Users' routing is untouched.
 */
export async function warmSite(runner: NginxRunner, next: SiteConfig, options: Pick<SwitchOptions, "confirmPath"> = {}): Promise<number[] | null> {
  validateSite(next);
  if (next.switchMode !== "live" || next.protocol !== "http" || !runner.detectCapabilities().lua || !runner.isRunning()) return null;
  const current = readOrNull(runner.sitePath(next.app, next.protocol));
  if (current === null || parseSiteHeader(current)?.mode !== "live") return null;
  const probe = { path: options.confirmPath ?? "/", host: probeHostName(next) };
  return warmLivePort(runner.controlSocket, next.app, next.livePort, probe, WARM_CONNECTIONS);
}

/**
 * Removes an app's site (both protocols' files) after testing the config without it,
 * reloads, and drops its live-dict entry. Resolves false when there was nothing to remove.
 */
export function removeSite(runner: NginxRunner, app: string): Promise<boolean> {
  const paths = (["http", "tcp"] as const)
    .map((protocol) => sitePathOrNull(runner, app, protocol))
    .filter((path): path is string => path !== null);
  return removeFiles(runner, {
    files: () =>
      paths
        .map((path) => ({ path, previous: readOrNull(path) }))
        .filter((file): file is { path: string; previous: string } => file.previous !== null),
    // Its port's 404 server goes with the last named site there, or comes back when it was the default.
    alsoChanged: () => planClaims(runner, `app ${app}`, null, paths),
    asError: asNginxError,
    testFailed: (output) =>
      new NginxError("ERR_NGINX_TEST_FAILED", `removing site ${app}: nginx -t fails without it; nothing was removed`, { output }),
    async after() {
      for (const path of paths) await rm(pendingPath(path), { force: true });
      if (runner.detectCapabilities().lua && runner.isRunning()) await clearLivePort(runner.controlSocket, app);
    },
  });
}
