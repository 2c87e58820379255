import { NginxError } from "./errors.js";
import { CONTROL_PATH } from "./lua.js";
import { unixHttp } from "./unix-http.js";

export const DEFAULT_CONTROL_TIMEOUT_MS = 2_000;

export type ControlMethod = "GET" | "PUT" | "DELETE";

/**
 * One call to the live-mode control server over its unix socket (no process spawned; on
 * the socket's kept-alive connection, see unix-http.ts). Resolves with the app's port
 * *before* the call, or null when the dict had none.
 */
export function controlCall(
  socketPath: string,
  method: ControlMethod,
  app: string,
  port?: number,
  timeoutMs = DEFAULT_CONTROL_TIMEOUT_MS,
): Promise<number | null> {
  const body = method === "PUT" ? String(port) : "";
  const fail = (detail: string, cause?: unknown) =>
    new NginxError(
      "ERR_NGINX_CONTROL_FAILED",
      `live control ${method} ${app} via ${socketPath} failed: ${detail}; ` +
        "check that nginx runs with the Lua module and the cutover control server",
      { cause },
    );
  return unixHttp(socketPath, method, `${CONTROL_PATH}${app}`, body, timeoutMs, fail).then((text) => {
    const trimmed = text.trim();
    return trimmed === "" ? null : Number(trimmed);
  });
}

export function getLivePort(socketPath: string, app: string): Promise<number | null> {
  return controlCall(socketPath, "GET", app);
}

/** Sets the port every worker uses for `app` from its next request on; resolves with the previous one. */
export function setLivePort(socketPath: string, app: string, port: number): Promise<number | null> {
  return controlCall(socketPath, "PUT", app, port);
}

/** Clears the entry so workers use the port rendered in their config; resolves with the previous one. */
export function clearLivePort(socketPath: string, app: string): Promise<number | null> {
  return controlCall(socketPath, "DELETE", app);
}
