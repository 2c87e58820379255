import { NginxError } from "./errors.js";
import { lastUpstream } from "./confirm.js";
import { CONTROL_PATH, PROBE_STATUS_HEADER, PROBE_TIMEOUT_S, PROBE_UPSTREAM_HEADER, WARM_PATH } from "./lua.js";
import { unixHttp } from "./unix-http.js";

export const DEFAULT_CONTROL_TIMEOUT_MS = 2_000;

export type ControlMethod = "GET" | "PUT" | "DELETE";

/** What a PUT asks the control server to prove right after it sets the port (lua.ts, the control server). */
export interface LiveProbe {
  /** GET through the app's upstream, e.g. its health path. */
  path: string;
  /** The Host header it carries: the site's listen address, as a user would send it. */
  host: string;
}

/** The answer of a PUT with a probe: the port before it, and what the app answered through its upstream. */
export interface ProbedSwitch {
  previous: number | null;
  probe: { status: number | null; upstream: string | null };
}

/** Room above nginx's own wait for the probed app (PROBE_TIMEOUT_S), so its answer arrives first. */
const PROBE_MARGIN_MS = 1_000;

function controlFailure(socketPath: string, method: ControlMethod, app: string) {
  return (detail: string, cause?: unknown) =>
    new NginxError(
      "ERR_NGINX_CONTROL_FAILED",
      `live control ${method} ${app} via ${socketPath} failed: ${detail}; ` +
        "check that nginx runs with the Lua module and the cutover control server",
      { cause },
    );
}

function portOrNull(body: string): number | null {
  const trimmed = body.trim();
  return trimmed === "" ? null : Number(trimmed);
}

/**
 * One call to the live-mode control server over its unix socket (no process spawned; on
 * the socket's kept-alive connection, see unix-http.ts). Resolves with the app's port
 * *before* the call, or null when the dict had none.
 */
export async function controlCall(
  socketPath: string,
  method: ControlMethod,
  app: string,
  port?: number,
  timeoutMs = DEFAULT_CONTROL_TIMEOUT_MS,
): Promise<number | null> {
  const body = method === "PUT" ? String(port) : "";
  const answer = await unixHttp(socketPath, method, `${CONTROL_PATH}${app}`, body, timeoutMs, controlFailure(socketPath, method, app));
  return portOrNull(answer.body);
}

export function getLivePort(socketPath: string, app: string): Promise<number | null> {
  return controlCall(socketPath, "GET", app);
}

/** Sets the port every worker uses for `app` from its next request on; resolves with the previous one. */
export function setLivePort(socketPath: string, app: string, port: number): Promise<number | null> {
  return controlCall(socketPath, "PUT", app, port);
}

/**
 * setLivePort, and in the same call the proof: nginx GETs `probe.path` through the app's
 * upstream right after setting the port, before its worker serves another request, so the
 * answer does not wait behind the traffic that moves to the new port with it. Refused
 * (ERR_NGINX_CONTROL_FAILED, status 400) without touching the dict when the probe is not a
 * URL path or the host not a host.
 */
export async function switchLivePort(socketPath: string, app: string, port: number, probe: LiveProbe): Promise<ProbedSwitch> {
  const query = new URLSearchParams({ probe: probe.path, host: probe.host });
  const timeoutMs = PROBE_TIMEOUT_S * 1000 + PROBE_MARGIN_MS;
  const answer = await unixHttp(socketPath, "PUT", `${CONTROL_PATH}${app}?${query}`, String(port), timeoutMs, controlFailure(socketPath, "PUT", app));
  const status = Number(answer.headers[PROBE_STATUS_HEADER.toLowerCase()]);
  const upstream = answer.headers[PROBE_UPSTREAM_HEADER.toLowerCase()];
  return {
    previous: portOrNull(answer.body),
    probe: { status: Number.isInteger(status) ? status : null, upstream: lastUpstream(typeof upstream === "string" ? upstream : undefined) },
  };
}

/**
 * Before a live switch to `port`: nginx sends `connections` probes at once through the app's
 * upstream to that port (lua.ts, warmLocation), leaving as many kept-alive connections to it
 * in the worker's pool. Users' routing is untouched. Resolves with the probes' statuses.
 */
export async function warmLivePort(socketPath: string, app: string, port: number, probe: LiveProbe, connections: number): Promise<number[]> {
  const query = new URLSearchParams({ port: String(port), probe: probe.path, host: probe.host, connections: String(connections) });
  const timeoutMs = PROBE_TIMEOUT_S * 1000 + PROBE_MARGIN_MS;
  const answer = await unixHttp(socketPath, "GET", `${WARM_PATH}${app}?${query}`, "", timeoutMs, controlFailure(socketPath, "GET", app));
  return answer.body.split("\n").filter((line) => line !== "").map(Number);
}

/** Clears the entry so workers use the port rendered in their config; resolves with the previous one. */
export function clearLivePort(socketPath: string, app: string): Promise<number | null> {
  return controlCall(socketPath, "DELETE", app);
}
