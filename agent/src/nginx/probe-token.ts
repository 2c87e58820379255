import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * What nginx tells about itself goes only to the agent's own probes. The answer headers
 * a switch is confirmed by (X-Cutover-Upstream on app sites; X-Cutover-Backend and
 * X-Cutover-Lb-Revision on load balancers) name internal addresses, ports and config
 * revisions: an ordinary client gets none of them. The agent's probes carry this
 * header with the host's token; nginx adds the answer headers only when it matches
 * (probeOnlyMap), and never passes the header on to an app or a backend.
 */
export const PROBE_TOKEN_HEADER = "X-Cutover-Probe";

/** Where the agent keeps the host's token, in its state dir. */
export const PROBE_TOKEN_FILE = "probe-token";

const TOKEN = /^[0-9a-f]{32}$/;

export function isProbeToken(token: string): boolean {
  return TOKEN.test(token);
}

export function newProbeToken(): string {
  return randomBytes(16).toString("hex");
}

/**
 * The host's token, kept in `file` (0600): site files rendered before an agent restart
 * must stay the same bytes after it, or the next live switch would become a reload.
 */
export function loadProbeToken(file: string): string {
  try {
    const kept = readFileSync(file, "utf8").trim();
    if (isProbeToken(kept)) return kept;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  const token = newProbeToken();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return token;
}

/** `$http_x_cutover_probe`: the request header as nginx names it. */
const PROBE_HEADER_VARIABLE = `$http_${PROBE_TOKEN_HEADER.toLowerCase().replace(/-/g, "_")}`;

/**
 * An http-context map making `variable` worth `value` for a request that carries the
 * host's token and "" for any other; `add_header NAME $variable always` then sends the
 * header to the agent's probes alone (nginx sends no header with an empty value).
 */
export function probeOnlyMap(variable: string, value: string, token: string): string[] {
  if (!isProbeToken(token)) throw new Error("probe token must be 32 lower-case hex digits");
  return [`map ${PROBE_HEADER_VARIABLE} ${variable} {`, '    default "";', `    "${token}" ${value};`, "}"];
}

/** Inside a server block: the token never reaches an app or a backend. */
export const DROP_PROBE_HEADER = `    proxy_set_header ${PROBE_TOKEN_HEADER} "";`;
