/**
 * The CLI's exit codes (README, "Exit codes"), so a script or a CI job can tell why a verb
 * failed without reading its words. The numbers past 2 are sysexits.h's.
 */
export const EXIT = {
  /** The verb did what it was asked. */
  ok: 0,
  /** It ran and failed: a deploy or rollback that did not succeed, a preflight (`check`) that failed. */
  failed: 1,
  /** `deploy --plan`: the deploy would change something (nomad job plan's convention). */
  changes: 2,
  /** Bad input, found before anything was sent: a flag, an argument, the spec, the CLI's settings. */
  usage: 64,
  /** The coordinator refused what was sent as invalid: an unknown app or host, a bad value. */
  refused: 65,
  /** The coordinator cannot be reached, or is not the one pinned / trusted. */
  unreachable: 69,
  /** A bug: in the CLI, or an internal error of the coordinator. */
  internal: 70,
  /** Refused for now, the same call may pass later: the app is locked, a deployment is running, too many refused calls, a host to clean is unreachable, the app is being removed. */
  tryLater: 75,
  /** Refused for who is asking: the token is unknown, expired or revoked, or its role is too low. */
  denied: 77,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Thrown by CLI commands; only the entry point turns it into output and an exit code. */
export class ExitError extends Error {
  /** `apiCode`: the coordinator's error code when it refused the call (e.g. ERR_APP_LOCKED), for a command that handles one. */
  constructor(message: string, readonly exitCode: number = EXIT.failed, readonly apiCode?: string) {
    super(message);
  }
}

/** Refusals that say "not now": the same call may pass once someone else is done. */
const TRY_LATER_CODES: ReadonlySet<string> = new Set(["ERR_APP_LOCKED", "ERR_DEPLOYMENT_IN_PROGRESS", "ERR_RATE_LIMITED", "ERR_APP_REMOVING", "ERR_HOSTS_UNREACHABLE"]);

/** The exit code for a coordinator's error answer: by its error code where that says "not now", else by its HTTP status. */
export function exitCodeForRefusal(status: number, apiCode: string | undefined): ExitCode {
  if (status === 401 || status === 403) return EXIT.denied;
  if ((apiCode !== undefined && TRY_LATER_CODES.has(apiCode)) || status === 429 || status === 503) return EXIT.tryLater;
  if (status >= 500) return EXIT.internal;
  return EXIT.refused;
}
