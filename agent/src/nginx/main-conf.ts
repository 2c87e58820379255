import { join } from "node:path";
import { controlServerBlock, LIVE_DICT, LIVE_DICT_SIZE } from "./lua.js";
import { REQUESTS_DICT, REQUESTS_DICT_SIZE } from "./request-counting.js";

/** Longest unix socket path Linux accepts (sun_path is 108 bytes with the NUL). */
export const MAX_UNIX_SOCKET_PATH = 107;
export const DEFAULT_WORKER_CONNECTIONS = 1024;

/** Where everything of a managed nginx lives: one directory per agent state dir, nothing global. */
export interface ManagedPaths {
  /** The `-p` prefix, with a trailing slash as nginx prints it. */
  prefix: string;
  conf: string;
  /** Scratch main config used by `nginx -t` to test candidates without touching the live files. */
  testConf: string;
  pidFile: string;
  errorLog: string;
  controlSocket: string;
  /** http site files (`<app>.conf`), included in the http block. */
  sitesDir: string;
  /** tcp site files, included in the stream block. */
  streamsDir: string;
  /** Reload-mode request logs (`<site>.<app>.log`), read by the agent (request-counting.ts). */
  requestsDir: string;
  tempDir: string;
}

export function managedPaths(stateDir: string): ManagedPaths {
  const dir = join(stateDir, "nginx");
  return {
    prefix: `${dir}/`,
    conf: join(dir, "nginx.conf"),
    testConf: join(dir, "nginx.test.conf"),
    pidFile: join(dir, "nginx.pid"),
    errorLog: join(dir, "error.log"),
    controlSocket: join(dir, "control.sock"),
    sitesDir: join(dir, "sites"),
    streamsDir: join(dir, "streams"),
    requestsDir: join(dir, "requests"),
    tempDir: join(dir, "tmp"),
  };
}

export interface ManagedMainOptions {
  paths: ManagedPaths;
  /** Absolute paths of dynamic modules to load, in load order (ndk before lua). */
  modules: readonly string[];
  /** Render the live dict and the control server (needs the Lua module). */
  lua: boolean;
  /** Render a stream block for tcp sites (needs the stream module). */
  stream: boolean;
  /** Default 1: enough for a per-host proxy and for tests; "auto" for one per core. */
  workerProcesses?: number | "auto";
  workerConnections?: number;
  /** Worker account and group; rendered only when set (the directive means something only to a root master). */
  user?: { name: string; group: string };
  /** Explicit site files instead of the directory globs: how test configs swap in candidates. */
  includes?: { http: readonly string[]; stream: readonly string[] };
}

function includeLines(files: readonly string[] | undefined, glob: string): string[] {
  return (files ?? [glob]).map((file) => `    include ${file};`);
}

/** nginx.conf of the agent's own master (managed mode). Every path is inside the prefix. */
export function renderManagedMain(options: ManagedMainOptions): string {
  const { paths } = options;
  const temp = (name: string) => join(paths.tempDir, name);
  const lines = ["# Written by cutover-agent: the agent's own nginx master (managed mode).", ""];
  for (const module of options.modules) lines.push(`load_module ${module};`);
  if (options.modules.length > 0) lines.push("");
  if (options.user !== undefined) {
    lines.push(
      "# Workers never run as root: they run whatever a site's config makes them run. The",
      "# master (root) reads the config and binds the sockets; the workers need only the",
      "# temp dirs, which the master makes theirs.",
      `user ${options.user.name} ${options.user.group};`,
    );
  }
  lines.push(
    `worker_processes ${options.workerProcesses ?? 1};`,
    `pid ${paths.pidFile};`,
    // notice: the log then records each reload, which is what an operator reads after a failed switch.
    `error_log ${paths.errorLog} notice;`,
    "",
    "events {",
    `    worker_connections ${options.workerConnections ?? DEFAULT_WORKER_CONNECTIONS};`,
    "}",
    "",
    "http {",
    "    access_log off;",
    `    client_body_temp_path ${temp("client_body")};`,
    `    proxy_temp_path ${temp("proxy")};`,
    `    fastcgi_temp_path ${temp("fastcgi")};`,
    `    uwsgi_temp_path ${temp("uwsgi")};`,
    `    scgi_temp_path ${temp("scgi")};`,
    "",
  );
  if (options.lua) {
    lines.push(`    lua_shared_dict ${LIVE_DICT} ${LIVE_DICT_SIZE};`, `    lua_shared_dict ${REQUESTS_DICT} ${REQUESTS_DICT_SIZE};`, "", ...controlServerBlock(paths.controlSocket, 1), "");
  }
  lines.push(...includeLines(options.includes?.http, join(paths.sitesDir, "*.conf")), "}", "");
  if (options.stream) {
    lines.push("stream {", ...includeLines(options.includes?.stream, join(paths.streamsDir, "*.conf")), "}", "");
  }
  return lines.join("\n");
}

/** System mode: the cutover-owned conf.d file that adds the live dict and the control server. */
export function renderSystemControl(socketPath: string): string {
  return [
    "# Written by cutover-agent: live switching (shared dict + control socket) and request counters. Do not edit.",
    `lua_shared_dict ${LIVE_DICT} ${LIVE_DICT_SIZE};`,
    `lua_shared_dict ${REQUESTS_DICT} ${REQUESTS_DICT_SIZE};`,
    "",
    ...controlServerBlock(socketPath, 0),
    "",
  ].join("\n");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Test config for system mode: the system nginx.conf with the `include <dir>/*.conf;`
 * line replaced by the given files, on the same line so nginx's line numbers still
 * match the real file. Null when no spelling of the glob is found.
 */
export function replaceIncludeGlob(mainText: string, globs: readonly string[], files: readonly string[]): string | null {
  for (const glob of globs) {
    const pattern = new RegExp(`^([ \\t]*)include[ \\t]+["']?${escapeRegExp(glob)}["']?[ \\t]*;`, "m");
    if (pattern.test(mainText)) {
      return mainText.replace(pattern, (_all, indent: string) =>
        indent + files.map((file) => `include ${file};`).join(" "),
      );
    }
  }
  return null;
}
