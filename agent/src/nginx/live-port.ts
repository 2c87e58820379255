import { rm } from "node:fs/promises";
import { getLivePort } from "./control.js";
import { NginxError } from "./errors.js";
import { exclusive } from "./queue.js";
import type { NginxRunner } from "./runner.js";
import { isValidAppName, parseSiteHeader, type SiteHeader, type SwitchMode } from "./site.js";
import { pendingPath, readOrNull, restoreFile, sitePathOrNull } from "./site-files.js";

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

/**
 * Reads an app's live port after every change queued on this nginx (so never halfway
 * through one), finishing first a live switch's fallback write the agent did not live to
 * make (settleFallback).
 */
export function readLivePort(runner: NginxRunner, app: string): Promise<LivePortReading> {
  if (!isValidAppName(app)) return Promise.reject(new NginxError("ERR_NGINX_INVALID_SITE", `invalid app name ${JSON.stringify(app)}`));
  return exclusive(runner, async () => {
    let path: string | null = null;
    let header: SiteHeader | null = null;
    for (const protocol of ["http", "tcp"] as const) {
      path = sitePathOrNull(runner, app, protocol);
      const text = path === null ? null : readOrNull(path);
      header = text === null ? null : parseSiteHeader(text);
      if (header !== null) break;
    }
    const dict =
      header?.mode === "live" && runner.detectCapabilities().lua && runner.isRunning()
        ? await getLivePort(runner.controlSocket, app)
        : null;
    if (path !== null && header !== null) header = await settleFallback(path, header, dict);
    return {
      file: header?.livePort ?? null,
      dict,
      serving: dict ?? header?.livePort ?? null,
      mode: header?.mode ?? null,
    };
  });
}

/*
 * A live switch writes its new fallback file after it resolved (change.ts, "after-done"),
 * with a copy waiting beside the site from before the dict was set. An agent that died in
 * between left the dict on the new port and the file on the old one: the color the caller
 * will stop once the new one serves, and what an nginx restart would then send every
 * request to. So the reading that recovery starts from puts that right first:
 *
 *  - copy on the dict's port: the switch got as far as setting the dict, the color behind
 *    it passed its health gate (switchSite's contract) and serves now; the file gets the
 *    copy. If the switch died before its confirmation and the color is bad, recovery finds
 *    it unhealthy and switches back, which writes the file again.
 *  - copy on another port, or no dict (nginx restarted: the file serves, and it names the
 *    color that served before the switch): the switch did not take, the copy goes.
 */
async function settleFallback(path: string, header: SiteHeader, dict: number | null): Promise<SiteHeader> {
  const pending = readOrNull(pendingPath(path));
  if (pending === null) return header;
  const copy = parseSiteHeader(pending);
  if (dict !== null && copy?.mode === "live" && copy.livePort === dict && copy.app === header.app) {
    await restoreFile(path, pending);
    header = copy;
  }
  await rm(pendingPath(path), { force: true });
  return header;
}
