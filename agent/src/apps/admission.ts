import { accessSync, constants, statSync } from "node:fs";
import { checkProxyDirective, isTlsPath, isUrlPath } from "@cutover/spec";
import { resolveRunAs, type RunAsOptions } from "../process/index.js";
import type { AppDefinition } from "./definition.js";
import { DeployError } from "./errors.js";

/** What this host lets a Deploy do, whatever the coordinator sent. */
export type AdmissionPolicy = RunAsOptions;

/**
 * Throws, before a deploy changes anything on the host, when this host will
 * not run `definition`: an app that would run as root without allow_root_apps
 * (ERR_ROOT_APP_REFUSED), a run.user this host lacks (ERR_UNKNOWN_USER), or a
 * proxy directive outside the spec's allowlist (ERR_DIRECTIVE_REFUSED), a health path
 * that is not a plain URL path (ERR_INVALID_DEFINITION: it goes into requests the agent
 * and nginx send), or a TLS certificate or key file that is missing, unreadable or a key
 * others can read (ERR_TLS_FILE_REFUSED). The
 * coordinator checked the spec already; a host does not take its word for it.
 */
export function admitDefinition(definition: AppDefinition, policy: AdmissionPolicy): void {
  resolveRunAs(definition.run.user, policy);
  const check = definition.health.check;
  if (check.kind === "http" && !isUrlPath(check.path)) {
    throw new DeployError("ERR_INVALID_DEFINITION", `health.http.path ${JSON.stringify(check.path)} is refused by this host: a URL path starting with "/", without spaces, quotes or control characters`);
  }
  for (const [i, directive] of definition.proxy.directives.entries()) {
    const checked = checkProxyDirective(directive);
    if (!checked.ok) {
      throw new DeployError("ERR_DIRECTIVE_REFUSED", `proxy.directives[${i}] ${JSON.stringify(directive)} is refused by this host: ${checked.why}`);
    }
  }
  const tls = definition.proxy.tls;
  if (tls && "path" in tls.certificate) checkTlsFile(tls.certificate.path, "certificate", "proxy.tls");
  if (tls && "path" in tls.key) checkTlsFile(tls.key.path, "key", "proxy.tls");
}

/**
 * A TLS file named by path must be a regular file this agent (and so the nginx master it
 * runs or signals, as the same user) can read, which no other user can write; a key that
 * other users can read is refused too: ERR_TLS_FILE_REFUSED, before anything changes.
 */
export function checkTlsFile(path: string, what: "certificate" | "key", section: "proxy.tls" | "lb.tls"): void {
  const refuse = (why: string) => new DeployError("ERR_TLS_FILE_REFUSED", `${section}.${what} ${path} is refused by this host: ${why}`);
  if (!isTlsPath(path)) throw refuse("not a plain absolute path");
  let mode: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw refuse("it is not a regular file");
    mode = stat.mode;
    accessSync(path, constants.R_OK);
  } catch (error) {
    if (error instanceof DeployError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw refuse(code === "ENOENT" ? "no such file" : code === "EACCES" ? "this agent (and nginx) cannot read it" : String(error));
  }
  if (mode & 0o002) throw refuse(`any user can write it (mode ${(mode & 0o777).toString(8)}); chmod o-w`);
  if (what === "key" && mode & 0o004) throw refuse(`any user can read the private key (mode ${(mode & 0o777).toString(8)}); chmod o-r, or chmod 600`);
}
