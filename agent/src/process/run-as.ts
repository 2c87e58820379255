import { ProcessError } from "./errors.js";
import { lookupUserInPasswd, type UserIds, type UserLookup } from "./users.js";

/**
 * Whether this host starts apps that would run as root: `refuse` unless the
 * operator set allow_root_apps. Whoever may deploy would otherwise be root on
 * every host, since a spec chooses the command.
 */
export type RootApps = "allow" | "refuse";

export const ROOT_APPS_SETTING = "allow_root_apps: true in /etc/cutover/agent.yaml (or the flag --allow-root-apps)";

export interface RunAsOptions {
  rootApps: RootApps;
  /** Resolves run.user; default reads /etc/passwd. */
  lookupUser?: UserLookup;
  /** The agent's effective uid, which an app without run.user keeps; default process.geteuid(). */
  agentUid?: number;
}

/**
 * The account an app runs as: run.user's ids, or undefined for the agent's
 * own. Throws ERR_UNKNOWN_USER for an account this host lacks, and
 * ERR_ROOT_APP_REFUSED when the app would be uid 0 (or primary group 0) on a
 * host that refuses it.
 */
export function resolveRunAs(user: string | undefined, options: RunAsOptions): UserIds | undefined {
  const ids = user ? (options.lookupUser ?? lookupUserInPasswd)(user) : undefined;
  const uid = ids?.uid ?? options.agentUid ?? process.geteuid?.() ?? -1;
  // The root group counts too: root's files are often group-readable (or writable) by it.
  if ((uid === 0 || ids?.gid === 0) && options.rootApps !== "allow") {
    const why =
      user === undefined
        ? "the spec sets no run.user, so the app would run as the agent's user, root"
        : `run.user ${JSON.stringify(user)} is ${uid === 0 ? "uid 0" : "in group 0 (root)"} on this host`;
    throw new ProcessError(
      "ERR_ROOT_APP_REFUSED",
      `apps run as root only where the agent allows it: ${why}. Set run.user to an unprivileged account (e.g. cutover or nobody), or allow root apps on this host with ${ROOT_APPS_SETTING}`,
    );
  }
  return ids;
}
