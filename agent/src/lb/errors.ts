import { NginxError } from "../nginx/index.js";
import { ConfigChangeError, type NginxErrorDetails } from "../nginx/errors.js";

/** Stable codes for every way a front load balancer operation can fail; callers and tests branch on these. */
export const LB_ERROR_CODES = [
  /** The LB site config is invalid before nginx sees it (names the field and what was expected). */
  "ERR_LB_INVALID_SITE",
  /** The site claims a name or port another site of this nginx holds (nginx/virtual-host.ts). */
  "ERR_LB_VHOST_CLASH",
  /** `nginx -t` rejected the candidate LB site; the live file was not touched. `output` is nginx's message. */
  "ERR_LB_TEST_FAILED",
  /** The master did not take the new config (SIGHUP failed, emerg in the log, or no new workers in time). */
  "ERR_LB_RELOAD_FAILED",
  /** No answer from an `up` backend (or, with a canary pin, from a canary backend) through the LB before the deadline. */
  "ERR_LB_CONFIRM_TIMEOUT",
  /** The site's live-mode control socket refused or failed a call. */
  "ERR_LB_CONTROL_FAILED",
  /** Live mode was asked for but this nginx has no Lua module. */
  "ERR_LB_LIVE_UNSUPPORTED",
  /** No nginx master is running for this runner. */
  "ERR_LB_NOT_RUNNING",
  /** Reading or writing a config file failed (permissions, disk full). */
  "ERR_LB_IO_FAILED",
  /** waitDrained was given a host name that is not among the site's backends. */
  "ERR_LB_UNKNOWN_HOST",
  /** waitDrained was given a host that still receives new requests (state "up" with a weight above 0). */
  "ERR_LB_HOST_UP",
] as const;

export type LbErrorCode = (typeof LB_ERROR_CODES)[number];

export type LbErrorDetails = NginxErrorDetails;

/** The one error type of the LB module (same shape as the nginx module's). */
export class LbError extends ConfigChangeError<LbErrorCode> {
  override readonly name = "LbError";
}

export function isLbError(error: unknown, code?: LbErrorCode): error is LbError {
  return error instanceof LbError && (code === undefined || error.code === code);
}

const FROM_NGINX: Partial<Record<NginxError["code"], LbErrorCode>> = {
  ERR_NGINX_TEST_FAILED: "ERR_LB_TEST_FAILED",
  ERR_NGINX_VHOST_CLASH: "ERR_LB_VHOST_CLASH",
  ERR_NGINX_RELOAD_FAILED: "ERR_LB_RELOAD_FAILED",
  ERR_NGINX_NOT_RUNNING: "ERR_LB_NOT_RUNNING",
  ERR_NGINX_LIVE_UNSUPPORTED: "ERR_LB_LIVE_UNSUPPORTED",
  ERR_NGINX_CONTROL_FAILED: "ERR_LB_CONTROL_FAILED",
};

/** Any failure as an LbError: the runner's NginxErrors keep their meaning (and nginx's words), anything else is I/O. */
export function asLbError(error: unknown): LbError {
  if (error instanceof LbError) return error;
  if (error instanceof NginxError) {
    return new LbError(FROM_NGINX[error.code] ?? "ERR_LB_IO_FAILED", error.message, { output: error.output, cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new LbError("ERR_LB_IO_FAILED", `LB config change failed: ${message}`, { cause: error });
}
