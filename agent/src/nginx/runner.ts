import { closeSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import type { NginxCapabilities } from "./capabilities.js";
import { NginxError } from "./errors.js";
import { childPids, isNginxMaster, pollUntil, processTitle } from "./proc.js";
import type { SiteProtocol } from "./site.js";

export type RunnerKind = "managed" | "system";

/** `nginx -t`'s verdict and its own words. */
export interface TestResult {
  ok: boolean;
  output: string;
  /** The same bytes passed before and nginx -t did not run again (managed nginx, test-memo.ts). */
  remembered?: boolean;
}

/**
 * Files to test in place of the live ones: live path -> candidate path that replaces it
 * (a new live path adds a file), or null to test without that file.
 */
export type Candidates = ReadonlyMap<string, string | null>;

/** A config file cutover owns besides the site files (system mode: the live dict). */
export interface SupportFile {
  path: string;
  content: string;
}

export interface ReloadOptions {
  /**
   * Fail as soon as the error log shows an [emerg]/[alert] after the signal (default). A
   * rollback turns this off: the master may still be logging the failed attempt it is
   * retrying (bind retries take ~2.5 s), and only new workers say the old config is back.
   */
  failFast?: boolean;
}

/**
 * The worker generation a reload replaced. nginx lets old and new workers both accept
 * for 100 ms after a reload (a fixed ngx_msleep(100) in the master) before it retires the
 * old ones; until then a new connection may still get the old config.
 */
export interface Handover {
  masterPid: number;
  oldWorkers: readonly number[];
}

/** One nginx the agent drives: its own master (managed) or the host's (system). */
export interface NginxRunner {
  readonly kind: RunnerKind;
  /** Unix socket of the live-mode control server. */
  readonly controlSocket: string;
  /** The host's probe token: only requests carrying it are told which upstream or backend served (probe-token.ts). */
  readonly probeToken: string;
  /** Where the site file of `app` lives; throws ERR_NGINX_STREAM_UNSUPPORTED for tcp without a stream include. */
  sitePath(app: string, protocol: SiteProtocol): string;
  /**
   * Where a reload-mode site writes its request log (request-counting.ts), when this nginx
   * keeps one: the managed master does, under the agent's state dir; a system nginx does not.
   */
  requestLogPath?(site: "app" | "lb", app: string): string;
  /** Files live mode needs besides the site files, as they should read. */
  liveSupportFiles(): readonly SupportFile[];
  /** Cached at creation from module files and `nginx -V` (system: what the host config loads). */
  detectCapabilities(): NginxCapabilities;
  /** `nginx -t` of the config as it would be with `candidates` in place; never touches live files. */
  test(candidates?: Candidates): Promise<TestResult>;
  /**
   * Makes the master load its config; resolves once new workers run (throws
   * ERR_NGINX_RELOAD_FAILED otherwise). Await `retired(handover)` before relying on
   * every new connection getting the new config.
   */
  reload(options?: ReloadOptions): Promise<Handover>;
  /** Resolves once no worker of the replaced generation accepts connections. */
  retired(handover: Handover): Promise<void>;
  /** A master for this config is alive (pid file + /proc check). */
  isRunning(): boolean;
}

export const DEFAULT_RELOAD_TIMEOUT_MS = 10_000;
/** /proc has no change events, so reload progress is polled: new workers appear within ~10 ms. */
export const RELOAD_POLL_INTERVAL_MS = 1;
/** Retiring takes nginx's fixed 100 ms; a coarser poll costs little latency and less CPU. */
export const RETIRE_POLL_INTERVAL_MS = 5;
const LOG_FAILURE = /\[(?:emerg|alert)\]/;

/** `*.conf` files of a directory, sorted like nginx's include glob; [] when it does not exist. */
export function listConfFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((name) => name.endsWith(".conf"))
      .sort()
      .map((name) => join(dir, name));
  } catch {
    return [];
  }
}

/** The include list nginx would see for `dir` with the candidates in place. */
export function withCandidates(dir: string, files: readonly string[], candidates: Candidates): string[] {
  const result: string[] = [];
  for (const file of files) {
    if (!candidates.has(file)) result.push(file);
    else {
      const candidate = candidates.get(file);
      if (candidate != null) result.push(candidate);
    }
  }
  for (const [live, candidate] of candidates) {
    if (candidate != null && !files.includes(live) && live.startsWith(`${dir}/`) && !live.slice(dir.length + 1).includes("/")) {
      result.push(candidate);
    }
  }
  return result;
}

export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Lines the file gained after `offset` (the error log since we signalled). */
export function readSince(path: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return "";
  }
  try {
    const size = statSync(path).size;
    if (size <= offset) return "";
    const buffer = Buffer.alloc(size - offset);
    const read = readSync(fd, buffer, 0, buffer.length, offset);
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function failureLines(text: string): string {
  return text
    .split("\n")
    .filter((line) => LOG_FAILURE.test(line))
    .join("\n");
}

/**
 * An old worker no longer accepts connections: gone, or titled "worker process is shutting
 * down", which nginx sets in the same step that closes its listening sockets.
 */
function oldWorkerStopped(pid: number, children: readonly number[]): boolean {
  if (!children.includes(pid)) return true;
  return processTitle(pid)?.includes("shutting down") ?? true;
}

/**
 * SIGHUP to a master, then wait for the outcome: new workers running (the master took the
 * config), or an [emerg]/[alert] in the error log (it kept the old config, e.g. a bind
 * failure that `nginx -t` cannot see). Returns the generation to await with waitRetired.
 */
export async function reloadMaster(
  pid: number,
  errorLog: string | null,
  timeoutMs: number,
  options: ReloadOptions = {},
): Promise<Handover> {
  const failFast = options.failFast ?? true;
  const oldWorkers = childPids(pid);
  const before = new Set(oldWorkers);
  const offset = errorLog === null ? 0 : fileSize(errorLog);
  try {
    process.kill(pid, "SIGHUP");
  } catch (error) {
    throw new NginxError("ERR_NGINX_NOT_RUNNING", `nginx master ${pid} cannot be signalled; start nginx and retry`, {
      cause: error,
    });
  }
  type Outcome = { ok: true } | { ok: false; why: string; output: string };
  const outcome = await pollUntil<Outcome>(
    () => {
      if (childPids(pid).some((child) => !before.has(child))) return { ok: true };
      if (!isNginxMaster(pid)) return { ok: false, why: `master ${pid} exited during reload`, output: "" };
      if (failFast && errorLog !== null) {
        const failure = failureLines(readSince(errorLog, offset));
        if (failure !== "") return { ok: false, why: "nginx refused the new config", output: failure };
      }
      return undefined;
    },
    { timeoutMs, intervalMs: RELOAD_POLL_INTERVAL_MS },
  );
  if (outcome?.ok) return { masterPid: pid, oldWorkers };
  const output = outcome?.output || (errorLog === null ? "" : failureLines(readSince(errorLog, offset)));
  throw new NginxError(
    "ERR_NGINX_RELOAD_FAILED",
    `reload of nginx master ${pid} failed: ${outcome?.why ?? `no new workers within ${timeoutMs} ms`}` +
      (errorLog === null ? "" : `; see ${errorLog}`),
    { output },
  );
}

/** Waits until every worker of the replaced generation is gone or shutting down. */
export async function waitRetired(handover: Handover, timeoutMs: number): Promise<void> {
  const done = await pollUntil(
    () => {
      const children = childPids(handover.masterPid);
      return handover.oldWorkers.every((old) => oldWorkerStopped(old, children)) ? true : undefined;
    },
    { timeoutMs, intervalMs: RETIRE_POLL_INTERVAL_MS },
  );
  if (!done) {
    throw new NginxError(
      "ERR_NGINX_RELOAD_FAILED",
      `nginx master ${handover.masterPid} did not retire its old workers (${handover.oldWorkers.join(", ")}) within ${timeoutMs} ms`,
    );
  }
}
