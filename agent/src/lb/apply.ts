import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type ChangeOptions, type ChangeResult, type ChangeState, type Plan, probeOptions, runChange } from "../nginx/change.js";
import { removeFiles } from "../nginx/removal.js";
import { claimsOf, planClaims } from "../nginx/virtual-host.js";
import type { FileChange } from "../nginx/change.js";
import type { NginxRunner } from "../nginx/index.js";
import { isValidAppName } from "../nginx/site.js";
import { readOrNull } from "../nginx/site-files.js";
import type { Transition } from "../nginx/timed-transaction.js";
import { lbRevision, normalizeLbSite, parseLbHeader, serializeLbState, type LbSiteConfig } from "./config.js";
import { confirmLbSite, DEFAULT_LB_CONFIRM_TIMEOUT_MS } from "./confirm.js";
import { isUnreachable, putLbState, restoreLbState } from "./control.js";
import { recordGenerations } from "./drain.js";
import { asLbError, LbError } from "./errors.js";
import { lbControlSocket, lbSitePath, MAX_UNIX_SOCKET_PATH } from "./names.js";
import { renderLbSite } from "./render.js";

// A change of an LB site, as a Plan for the nginx change runner (nginx/change.ts, which
// draws the states). Its dict holds the site's whole routing state: "setting-state". The
// live fallback file is written overlapping the confirmation ("with-confirm"): the
// coordinator moves on (stops or drains hosts) as soon as an apply answers.

export type LbApplyState = ChangeState<"setting-state">;
export type LbTransition = Transition<LbApplyState>;
export type ApplyLbOptions = ChangeOptions<"setting-state">;

export interface ApplyLbResult extends ChangeResult<LbApplyState> {
  /** lbRevision of the applied config: every answer through the LB now carries it. */
  revision: string;
}

const LB_CHANGE = { what: "LB change", setStep: "setting-state" as const, asError: asLbError };

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

/**
 * Makes the front LB of `config.app` route as `config` says, proves it through the LB's
 * listen address, and on any failure puts the previous config back before throwing an
 * LbError (with `rolledBack`). One change at a time per runner.
 */
export async function applyLbSite(runner: NginxRunner, input: LbSiteConfig, options: ApplyLbOptions = {}): Promise<ApplyLbResult> {
  let config = input;
  const app = typeof input?.app === "string" ? input.app : "?";
  const outcome = await runChange(
    runner,
    LB_CHANGE,
    app,
    () => {
      config = normalizeLbSite(input);
      return planApply(runner, config, options);
    },
    options,
  );
  const { reloaded, durationMs, handoverMs, steps } = outcome;
  return { app: config.app, mode: config.switchMode, reloaded, durationMs, handoverMs, revision: lbRevision(config), steps };
}

function planApply(runner: NginxRunner, config: LbSiteConfig, options: ApplyLbOptions): Plan {
  requireSupport(runner, config);
  const socket = controlSocketFor(runner, config.app);
  const path = lbSitePath(runner, config.app);
  const previous = readOrNull(path);
  const previousConfig = previous === null ? null : parseLbHeader(previous);
  // Without the Lua counters, the LB's requests are counted from its request log.
  const requestLog = config.switchMode === "reload" ? runner.requestLogPath?.("lb", config.app) : undefined;
  const rendered = renderLbSite(config, { controlSocket: socket, requestLog, probeToken: runner.probeToken });
  const live = config.switchMode === "live";
  // Live when only the state differs: the file with the previous state would be the previous file.
  const liveEligible =
    live &&
    previousConfig?.switchMode === "live" &&
    previous === renderLbSite({ ...config, backends: previousConfig.backends, canary: previousConfig.canary }, { controlSocket: socket, probeToken: runner.probeToken });
  const files: FileChange[] = previous === rendered ? [] : [{ path, next: rendered, previous }];
  // Refuses a name or port another site of this nginx holds; the port's 404 server changes with it.
  files.push(...planClaims(runner, `lb ${config.app}`, claimsOf(`lb ${config.app}`, config.listenAddress, config.listenPort, config.virtualHost), [path]));
  const putState = () => putLbState(socket, serializeLbState(config));
  return {
    app: config.app,
    // Live only when the site file alone differs: a port's 404 server that changes with it needs the reload.
    route: options.forceReload ? "reload" : liveEligible && files.every((file) => file.path === path) ? "live" : files.length === 0 ? "verify" : "reload",
    files,
    live: {
      async set() {
        try {
          const before = await putState();
          // Proved by confirming through the LB, after the set.
          return { undo: async () => void (await restoreLbState(socket, before)), confirmed: false };
        } catch (error) {
          if (isUnreachable(error)) return null;
          throw error;
        }
      },
      fallback: files[0] ?? null,
      persist: "with-confirm",
    },
    setAfterReload: live
      ? async () => {
          const before = await putState();
          // The dict survives reloads; it is only read (and reachable) when the restored config is live.
          return async () => {
            if (previousConfig?.switchMode === "live") await restoreLbState(socket, before);
          };
        }
      : null,
    prepareReload: () => {
      if (live) mkdirSync(dirname(socket), { recursive: true, mode: 0o700 });
    },
    onLoaded: (handover) => recordGenerations(runner, config.app, handover),
    confirm: (timeoutMs = options.confirmTimeoutMs ?? DEFAULT_LB_CONFIRM_TIMEOUT_MS) => confirmLbSite(config, { ...probeOptions(options, timeoutMs), probeToken: runner.probeToken }),
    testFailed: (output) =>
      new LbError(
        "ERR_LB_TEST_FAILED",
        `LB site ${config.app}: nginx -t rejected the new config; the live config is unchanged. Fix the site and retry`,
        { output },
      ),
  };
}

/**
 * Removes an app's LB site after testing the config without it, and reloads (its dict
 * and control socket go with it). Resolves false when there was nothing to remove.
 */
export function removeLbSite(runner: NginxRunner, app: string): Promise<boolean> {
  if (!isValidAppName(app)) return Promise.reject(new LbError("ERR_LB_INVALID_SITE", `invalid app name ${JSON.stringify(app)}`));
  const path = lbSitePath(runner, app);
  return removeFiles(runner, {
    files: () => {
      const previous = readOrNull(path);
      return previous === null ? [] : [{ path, previous }];
    },
    alsoChanged: () => planClaims(runner, `lb ${app}`, null, [path]),
    asError: asLbError,
    testFailed: (output) =>
      new LbError("ERR_LB_TEST_FAILED", `removing LB site ${app}: nginx -t fails without it; nothing was removed`, { output }),
    onLoaded: (handover) => recordGenerations(runner, app, handover),
  });
}
