/**
 * health.http.path: what a health check (and the agent's probe through nginx after a live
 * switch) may request. Only the characters of an already-encoded URL path and query: no
 * spaces, control characters, quotes or backslashes, so the path can go into an HTTP request
 * line and a Lua pattern check unchanged. The coordinator checks every spec with this; the
 * agent checks again before it deploys.
 */
const URL_PATH = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*$/;

export function isUrlPath(value: string): boolean {
  return URL_PATH.test(value);
}
