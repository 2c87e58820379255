import type { NginxRunner } from "../nginx/index.js";
import { isValidAppName } from "../nginx/site.js";
import { readOrNull } from "../nginx/site-files.js";
import { normalizeLbSite, parseLbHeader, parseLbState, type LbSiteConfig, type ParsedLbState } from "./config.js";
import { getLbState, isUnreachable } from "./control.js";
import { LbError } from "./errors.js";
import { lbControlSocket, lbSitePath } from "./names.js";

/** What is applied for an app's LB site now, for re-adoption after an agent restart. */
export interface LbSiteReading {
  /** The config the site file was written from: what a restarted nginx serves. Null without a file. */
  file: LbSiteConfig | null;
  /**
   * Live mode: the state in the site's dict (null when it holds none, e.g. after an nginx
   * restart, or when the site's control socket is not there because the file was never loaded).
   */
  dict: ParsedLbState | null;
  /** What routes requests now: the file's config with the dict's state when it has one. */
  serving: LbSiteConfig | null;
}

export async function readLbSite(runner: NginxRunner, app: string): Promise<LbSiteReading> {
  if (!isValidAppName(app)) throw new LbError("ERR_LB_INVALID_SITE", `invalid app name ${JSON.stringify(app)}`);
  const text = readOrNull(lbSitePath(runner, app));
  const file = text === null ? null : parseLbHeader(text);
  let dict: ParsedLbState | null = null;
  if (file?.switchMode === "live" && runner.detectCapabilities().lua && runner.isRunning()) {
    try {
      const state = await getLbState(lbControlSocket(runner, app));
      dict = state === null ? null : parseLbState(state);
    } catch (error) {
      if (!isUnreachable(error)) throw error;
    }
  }
  let serving = file;
  if (file !== null && dict !== null) {
    try {
      serving = normalizeLbSite({ ...file, backends: dict.backends, canary: dict.canary });
    } catch {
      serving = file; // a dict the agent did not write: the file is the last known good
    }
  }
  return { file, dict, serving };
}
