import { checkProxyDirective, isUrlPath } from "@cutover/spec";
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
 * and nginx send). The
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
}
