import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseBuild, systemCapabilities, type NginxBuild, type NginxCapabilities } from "./capabilities.js";
import { DEFAULT_NGINX_BINARY, dumpCommand, testCommand, versionCommand } from "./commands.js";
import { NginxError } from "./errors.js";
import { commandOutput, runCommand } from "./exec.js";
import { replaceIncludeGlob, renderSystemControl } from "./main-conf.js";
import { newProbeToken } from "./probe-token.js";
import { isNginxMaster, readPidFile } from "./proc.js";
import {
  DEFAULT_RELOAD_TIMEOUT_MS,
  listConfFiles,
  reloadMaster,
  waitRetired,
  withCandidates,
  type Candidates,
  type Handover,
  type NginxRunner,
  type ReloadOptions,
  type SupportFile,
  type TestResult,
} from "./runner.js";
import type { SiteProtocol } from "./site.js";

export const DEFAULT_MAIN_CONF = "/etc/nginx/nginx.conf";
export const DEFAULT_CONF_DIR = "/etc/nginx/conf.d";
export const DEFAULT_PID_FILE = "/run/nginx.pid";
export const DEFAULT_ERROR_LOG = "/var/log/nginx/error.log";
export const DEFAULT_SYSTEM_CONTROL_SOCKET = "/run/cutover/nginx-control.sock";
/** Not `cutover-<app>.conf`: a dot cannot appear in an app name, so no app can collide with it. */
export const CONTROL_CONF_NAME = "cutover.control.conf";
/** Written beside the main config so its relative includes resolve as in the real one. */
const TEST_CONF_NAME = ".cutover-test.conf";

export interface SystemRunnerOptions {
  binary?: string;
  /** The host's probe token (probe-token.ts; the agent keeps it in its state dir); default: a new one for this process. */
  probeToken?: string;
  /** The host's main config; default: the binary's --conf-path, else /etc/nginx/nginx.conf. */
  mainConf?: string;
  /** Directory included in the http block; site files are `<confDir>/cutover-<app>.conf`. */
  confDir?: string;
  /** Directory included in a stream block, for tcp sites; none on a stock Debian nginx. */
  streamConfDir?: string;
  /** Default: the main config's `pid` directive, else the binary's --pid-path, else /run/nginx.pid. */
  pidFile?: string;
  /** Where the master logs reload failures; default /var/log/nginx/error.log. */
  errorLog?: string;
  controlSocket?: string;
  reloadTimeoutMs?: number;
}

/** The `pid` directive of a main config, if it has one. */
export function pidFromConfig(mainText: string): string | null {
  return /^\s*pid\s+["']?([^"';\s]+)["']?\s*;/m.exec(mainText)?.[1] ?? null;
}

/** The host's nginx (system mode): cutover writes `cutover-*.conf` into its conf.d and signals its master. */
export class SystemNginx implements NginxRunner {
  readonly kind = "system";
  readonly binary: string;
  readonly mainConf: string;
  readonly confDir: string;
  readonly streamConfDir: string | null;
  readonly pidFile: string;
  readonly errorLog: string;
  readonly controlSocket: string;
  readonly probeToken: string;
  private readonly capabilities: NginxCapabilities;
  private readonly reloadTimeoutMs: number;

  constructor(options: SystemRunnerOptions, build: NginxBuild, capabilities: NginxCapabilities) {
    this.binary = options.binary ?? DEFAULT_NGINX_BINARY;
    this.mainConf = options.mainConf ?? build.confPath ?? DEFAULT_MAIN_CONF;
    this.confDir = options.confDir ?? DEFAULT_CONF_DIR;
    this.streamConfDir = options.streamConfDir ?? null;
    let mainText = "";
    try {
      mainText = readFileSync(this.mainConf, "utf8");
    } catch {}
    this.pidFile = options.pidFile ?? pidFromConfig(mainText) ?? build.pidPath ?? DEFAULT_PID_FILE;
    this.errorLog = options.errorLog ?? DEFAULT_ERROR_LOG;
    this.controlSocket = options.controlSocket ?? DEFAULT_SYSTEM_CONTROL_SOCKET;
    this.probeToken = options.probeToken ?? newProbeToken();
    this.capabilities = { lua: capabilities.lua, stream: capabilities.stream && this.streamConfDir !== null };
    this.reloadTimeoutMs = options.reloadTimeoutMs ?? DEFAULT_RELOAD_TIMEOUT_MS;
  }

  sitePath(app: string, protocol: SiteProtocol): string {
    if (protocol === "http") return join(this.confDir, `cutover-${app}.conf`);
    if (this.streamConfDir === null) {
      throw new NginxError(
        "ERR_NGINX_STREAM_UNSUPPORTED",
        `tcp site ${app}: system nginx has no stream include dir; add \`stream { include /etc/nginx/streams.d/*.conf; }\` ` +
          "to nginx.conf and pass streamConfDir",
      );
    }
    return join(this.streamConfDir, `cutover-${app}.conf`);
  }

  liveSupportFiles(): readonly SupportFile[] {
    // The control server's socket directory must exist before a reload binds it; 0700: root only.
    mkdirSync(dirname(this.controlSocket), { recursive: true, mode: 0o700 });
    return [{ path: join(this.confDir, CONTROL_CONF_NAME), content: renderSystemControl(this.controlSocket) }];
  }

  detectCapabilities(): NginxCapabilities {
    return { ...this.capabilities };
  }

  masterPid(): number | null {
    const pid = readPidFile(this.pidFile);
    return pid !== null && isNginxMaster(pid) ? pid : null;
  }

  isRunning(): boolean {
    return this.masterPid() !== null;
  }

  private globs(dir: string): string[] {
    const rel = relative(dirname(this.mainConf), dir);
    return [join(dir, "*.conf"), ...(rel.startsWith("..") ? [] : [`${rel}/*.conf`])];
  }

  async test(candidates: Candidates = new Map()): Promise<TestResult> {
    let text = readFileSync(this.mainConf, "utf8");
    const dirs = [this.confDir, ...(this.streamConfDir === null ? [] : [this.streamConfDir])];
    for (const dir of dirs) {
      const replaced = replaceIncludeGlob(text, this.globs(dir), withCandidates(dir, listConfFiles(dir), candidates));
      if (replaced === null) {
        throw new NginxError(
          "ERR_NGINX_CONF_DIR_NOT_INCLUDED",
          `${this.mainConf} does not include ${join(dir, "*.conf")}; add that include (http block for conf.d, ` +
            "stream block for tcp) or point cutover at the directory it includes",
        );
      }
      text = replaced;
    }
    const testConf = join(dirname(this.mainConf), TEST_CONF_NAME);
    writeFileSync(testConf, text, { mode: 0o600 });
    const result = await runCommand(testCommand(this.binary, testConf));
    return { ok: result.exitCode === 0, output: commandOutput(result) };
  }

  async reload(options?: ReloadOptions): Promise<Handover> {
    const pid = this.masterPid();
    if (pid === null) {
      throw new NginxError("ERR_NGINX_NOT_RUNNING", `no nginx master found via ${this.pidFile}; start nginx (systemctl start nginx)`);
    }
    return reloadMaster(pid, this.errorLog, this.reloadTimeoutMs, options);
  }
  retired(handover: Handover): Promise<void> {
    return waitRetired(handover, this.reloadTimeoutMs);
  }

}

/** Probes the host's nginx (`-V`, `-T`) once and returns a runner for it. */
export async function createSystemRunner(options: SystemRunnerOptions = {}): Promise<SystemNginx> {
  const binary = options.binary ?? DEFAULT_NGINX_BINARY;
  const version = await runCommand(versionCommand(binary));
  if (version.exitCode !== 0) {
    throw new NginxError("ERR_NGINX_NOT_RUNNING", `cannot run ${binary} -V; is nginx installed?`, { output: commandOutput(version) });
  }
  const build = parseBuild(version.stderr + version.stdout);
  const mainConf = options.mainConf ?? build.confPath ?? DEFAULT_MAIN_CONF;
  const dump = await runCommand(dumpCommand(binary, mainConf));
  return new SystemNginx(options, build, systemCapabilities(build, dump.stdout));
}
