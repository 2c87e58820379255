import { unixHttp } from "../nginx/unix-http.js";
import { LbError } from "./errors.js";
import { INFLIGHT_PATH, STATE_PATH } from "./lua.js";

export const DEFAULT_LB_CONTROL_TIMEOUT_MS = 2_000;

export type LbControlMethod = "GET" | "PUT" | "DELETE";

/** Errors that mean "nobody listens on that socket": the site's live config is not loaded (yet). */
const UNREACHABLE = new Set(["ENOENT", "ECONNREFUSED"]);

export function isUnreachable(error: unknown): boolean {
  const cause = (error as { cause?: NodeJS.ErrnoException } | undefined)?.cause;
  return error instanceof LbError && error.code === "ERR_LB_CONTROL_FAILED" && UNREACHABLE.has(cause?.code ?? "");
}

/**
 * One call to an LB site's control server over its unix socket, on the socket's kept-alive
 * connection (nginx/unix-http.ts). Resolves with the answer's body.
 */
function call(socketPath: string, method: LbControlMethod, path: string, body = "", timeoutMs = DEFAULT_LB_CONTROL_TIMEOUT_MS): Promise<string> {
  const fail = (detail: string, cause?: unknown) =>
    new LbError(
      "ERR_LB_CONTROL_FAILED",
      `LB control ${method} ${path} via ${socketPath} failed: ${detail}; check that the site is applied in live mode ` +
        "(nginx with the Lua module) and nginx is running",
      { cause },
    );
  return unixHttp(socketPath, method, path, body, timeoutMs, fail).then((answer) => answer.body);
}

const orNull = (text: string) => (text === "" ? null : text);

/** The state text in the dict, or null when it holds none (workers use the file's). */
export async function getLbState(socketPath: string): Promise<string | null> {
  return orNull(await call(socketPath, "GET", STATE_PATH));
}

/** Every worker routes by `state` from its next request on; resolves with the previous state text (null: none). */
export async function putLbState(socketPath: string, state: string): Promise<string | null> {
  return orNull(await call(socketPath, "PUT", STATE_PATH, state));
}

/** Clears the dict so workers use the state in the file they loaded; resolves with the previous state text. */
export async function clearLbState(socketPath: string): Promise<string | null> {
  return orNull(await call(socketPath, "DELETE", STATE_PATH));
}

/** Puts back what a PUT/DELETE returned: the text, or no entry. */
export function restoreLbState(socketPath: string, previous: string | null): Promise<string | null> {
  return previous === null ? clearLbState(socketPath) : putLbState(socketPath, previous);
}

/** Requests in flight per backend (`address:port` → count), as the balancer and log phase counted them. */
export async function getInFlight(socketPath: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const line of (await call(socketPath, "GET", INFLIGHT_PATH)).split("\n")) {
    const match = /^(\S+) (-?\d+)$/.exec(line.trim());
    if (match) counts.set(match[1]!, Number(match[2]));
  }
  return counts;
}
