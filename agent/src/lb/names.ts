import { dirname, join } from "node:path";
import type { NginxRunner } from "../nginx/index.js";
import type { LbGroup } from "./config.js";

// Every name an LB site puts into nginx's shared namespaces, and where its files live.
//
// App sites (agent/src/nginx) use `<app>.conf` / `cutover-<app>.conf` and upstreams named
// `cutover_<app>`. An app name never contains a dot, so every LB name below carries one
// (`cutover-lb.<app>.conf`, upstream `cutover-lb.<id>.<group>`) and cannot meet an app
// site's. http-level variables (`map`, `split_clients`) and upstream names are one
// namespace for the whole nginx and case-insensitive, so they use `lbIdent(app)`, an
// injective, lowercase spelling of the app name in [a-z0-9_].

/** Where unix sockets go when a renderer is not told the runner's directory (system mode's default). */
export const DEFAULT_LB_SOCKET_DIR = "/run/cutover";
/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
export const MAX_UNIX_SOCKET_PATH = 107;

/**
 * `[a-z0-9]` stay, `_` → `__`, `-` → `_0`, an upper-case letter → `_` + its lower case.
 * A prefix code, so two apps never share an ident, even apps that differ only in case.
 */
export function lbIdent(app: string): string {
  let ident = "";
  for (const ch of app) {
    if (ch === "_") ident += "__";
    else if (ch === "-") ident += "_0";
    else if (ch >= "A" && ch <= "Z") ident += `_${ch.toLowerCase()}`;
    else ident += ch;
  }
  return ident;
}

/** The upstream of one group (reload mode), or "live" for the Lua-balanced upstream. */
export function lbUpstream(app: string, group: LbGroup | "pool" | "live"): string {
  return `cutover-lb.${lbIdent(app)}.${group}`;
}

/** lbVariable(app, LB_PROBE_SUFFIX): "1" when the request carries the host's probe token (probe-token.ts), else "". */
export const LB_PROBE_SUFFIX = "probe";

/** An http-level variable of the site. Suffixes have no '_', so `<ident>_<suffix>` stays unique across apps. */
export function lbVariable(app: string, suffix: "pin" | "sticky" | "new" | "route" | "upstream" | "setcookie" | "backend" | "backend_shown" | "revision_shown" | typeof LB_PROBE_SUFFIX): string {
  return `$cutover_lb_${lbIdent(app)}_${suffix}`;
}

/** The live-mode shared dict (zone names are case-sensitive, and the dot keeps it apart from cutover_live). */
export function lbDictName(app: string): string {
  return `cutover_lb.${app}`;
}

/** The site file: beside the app sites, in the directory the http block includes. */
export function lbSitePath(runner: NginxRunner, app: string): string {
  return join(dirname(runner.sitePath(app, "http")), `cutover-lb.${app}.conf`);
}

export function lbSocketPath(dir: string, app: string): string {
  return join(dir, `lb-${app}.sock`);
}

/** The site's live-mode control socket, beside the runner's own control socket (a directory only the agent's user enters). */
export function lbControlSocket(runner: NginxRunner, app: string): string {
  return lbSocketPath(dirname(runner.controlSocket), app);
}
