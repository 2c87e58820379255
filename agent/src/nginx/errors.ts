/** Stable codes for every way an nginx operation can fail; tests and callers branch on these. */
export const NGINX_ERROR_CODES = [
  /** The site config is invalid before nginx sees it (bad app name, port, address). */
  "ERR_NGINX_INVALID_SITE",
  /** `nginx -t` rejected the candidate config; the live file was not touched. */
  "ERR_NGINX_TEST_FAILED",
  /** The master did not take the new config (SIGHUP failed, emerg in the log, or no new workers in time). */
  "ERR_NGINX_RELOAD_FAILED",
  /** The proxy did not answer from the expected upstream before the deadline. */
  "ERR_NGINX_CONFIRM_TIMEOUT",
  /** No nginx master is running for this runner (managed: not started or died; system: no pid). */
  "ERR_NGINX_NOT_RUNNING",
  /** The managed master could not be started or stopped. */
  "ERR_NGINX_START_FAILED",
  "ERR_NGINX_STOP_FAILED",
  /** The live-mode control endpoint (unix socket) refused or failed a call. */
  "ERR_NGINX_CONTROL_FAILED",
  /** Live mode was asked for but this nginx has no Lua module (or the site is tcp). */
  "ERR_NGINX_LIVE_UNSUPPORTED",
  /** A tcp site was asked for but this nginx has no stream module (or no stream include dir). */
  "ERR_NGINX_STREAM_UNSUPPORTED",
  /** Reading or writing a config file failed (permissions, disk full). */
  "ERR_NGINX_IO_FAILED",
  /** System mode: the main nginx.conf does not include the directory cutover writes into. */
  "ERR_NGINX_CONF_DIR_NOT_INCLUDED",
  /** The control socket's directory is a symlink, not the agent's, or writable by group or others. */
  "ERR_NGINX_SOCKET_DIR_UNSAFE",
  /** A site claims a name or port another site of this nginx holds (virtual-host.ts checkClaims). */
  "ERR_NGINX_VHOST_CLASH",
] as const;

export type NginxErrorCode = (typeof NGINX_ERROR_CODES)[number];

export interface NginxErrorDetails {
  /** nginx's own words (stderr of `nginx -t`, error log lines), when there are any. */
  output?: string;
  /** True when a failed switch put the previous config back and it is serving again. */
  rolledBack?: boolean;
  /** Set when restoring the previous config failed too: the operator must look now. */
  rollbackError?: Error;
  cause?: unknown;
}

/**
 * A failed nginx config change (app site or load-balancer site). `message` says what
 * failed and what to do next; `output` carries nginx's own message verbatim so it can
 * be shown to the operator.
 */
export class ConfigChangeError<C extends string> extends Error {
  readonly code: C;
  readonly output: string;
  rolledBack: boolean;
  rollbackError: Error | undefined;

  constructor(code: C, message: string, details: NginxErrorDetails = {}) {
    const output = details.output?.trim() ?? "";
    super(output && !message.includes(output) ? `${message}\n${output}` : message, { cause: details.cause });
    this.code = code;
    this.output = output;
    this.rolledBack = details.rolledBack ?? false;
    this.rollbackError = details.rollbackError;
  }
}

/** The one error type of the nginx module. */
export class NginxError extends ConfigChangeError<NginxErrorCode> {
  override readonly name = "NginxError";
}

export function isNginxError(error: unknown, code?: NginxErrorCode): error is NginxError {
  return error instanceof NginxError && (code === undefined || error.code === code);
}
