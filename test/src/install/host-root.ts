import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stopHostProcesses } from "../harness/host-processes.js";
import { outputOf, repoRoot, tempDir, type CliResult } from "../harness/processes.js";

export const INSTALL_SH = join(repoRoot, "install.sh");

/** Where install.sh puts things, relative to the root it is given. */
export const PATHS = {
  agentJs: "usr/local/lib/cutover/cutover-agent.mjs",
  wrapper: "usr/local/bin/cutover-agent",
  config: "etc/cutover/agent.yaml",
  unit: "etc/systemd/system/cutover-agent.service",
  stateDir: "var/lib/cutover/agent",
  dataDir: "var/lib/cutover",
  agentLog: "var/log/cutover/agent.log",
  pidFile: "run/cutover-agent.pid",
  tmpfiles: "etc/tmpfiles.d/cutover-agent.conf",
  runDir: "run/cutover",
} as const;

/** What the agent itself writes while it runs: not install.sh's doing. */
export const AGENT_RUNTIME = [PATHS.stateDir, PATHS.agentLog];

/**
 * A temp dir laid out like a fresh Debian host, as far as install.sh looks: the
 * directories it installs into, /etc/debian_version, and passwd/group files (with
 * the backups shadow's tools keep beside them). Teardown stops any agent started in it.
 */
export function hostRoot(t: { teardown(fn: () => void): void }, options: { debian?: boolean } = {}): string {
  const root = join(tempDir(t, "cutover-install-"), "root");
  for (const dir of ["etc/systemd/system", "etc/tmpfiles.d", "usr/local/bin", "usr/local/lib", "var/lib", "var/log", "run"]) {
    mkdirSync(join(root, dir), { recursive: true });
  }
  if (options.debian !== false) copyFileSync("/etc/debian_version", join(root, "etc", "debian_version"));
  for (const [file, line] of [["passwd", "root:x:0:0:root:/root:/bin/bash"], ["group", "root:x:0:"]] as const) {
    writeFileSync(join(root, "etc", file), `${line}\n`);
    writeFileSync(join(root, "etc", `${file}-`), `${line}\n`);
  }
  // Registered after tempDir, so it runs before the removal.
  t.teardown(() => stopInstalledAgent(root));
  return root;
}

/** Kills what install.sh started under `root`: its wrapper first (it would start the agent again), the agent, then the agent's nginx and apps. */
export function stopInstalledAgent(root: string): void {
  for (const pid of [readPidFile(root), ...agentPids(root)]) {
    if (pid === undefined) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  stopHostProcesses(join(root, PATHS.stateDir));
}

/** Live processes running the agent installed under `root`, whatever started them. */
export function agentPids(root: string): number[] {
  const needle = join(root, PATHS.agentJs);
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (cmdline.split("\0").includes(needle) && !stat.includes(") Z ")) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export function readPidFile(root: string): number | undefined {
  const file = join(root, PATHS.pidFile);
  return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : undefined;
}

export interface InstallerOptions {
  /** Run as this uid/gid instead of root (via setpriv). */
  asUser?: number;
}

/** Runs install.sh with bash, as an operator would, with the test's node. */
export async function runInstaller(t: { teardown(fn: () => void): void }, args: string[], options: InstallerOptions = {}): Promise<CliResult> {
  let file = "bash";
  let argv = [INSTALL_SH, ...args];
  if (options.asUser !== undefined) {
    // The repo may not be readable by that user: run a copy from a dir it can enter.
    const dir = tempDir(t, "cutover-install-sh-");
    chmodSync(dir, 0o755);
    copyFileSync(INSTALL_SH, join(dir, "install.sh"));
    chmodSync(join(dir, "install.sh"), 0o755);
    file = "setpriv";
    argv = [`--reuid=${options.asUser}`, `--regid=${options.asUser}`, "--clear-groups", "bash", join(dir, "install.sh"), ...args];
  }
  return outputOf(spawn(file, argv, { env: { ...process.env }, stdio: ["ignore", "pipe", "pipe"] }));
}

/** What systemd does at boot with install.sh's tmpfiles.d entry, done to `root` (systemd-tmpfiles --root). */
export async function bootTmpfiles(root: string): Promise<CliResult> {
  return outputOf(spawn("systemd-tmpfiles", ["--create", `--root=${root}`, join(root, PATHS.tmpfiles)], { stdio: ["ignore", "pipe", "pipe"] }));
}

export interface SnapshotOptions {
  /** Paths (relative, and everything under them) left out. */
  exclude?: readonly string[];
  /** Compare modification times too: proves a file was not rewritten with the same bytes. */
  mtimes?: boolean;
}

/** shadow's tools rewrite these backups on every change: their presence counts, not their bytes. */
const BACKUP_FILES = new Set(["etc/passwd-", "etc/group-"]);

/** Every entry under `root`: type, mode, owner, and content hash or link target. */
export function snapshot(root: string, options: SnapshotOptions = {}): Record<string, string> {
  const exclude = options.exclude ?? [];
  const entries: Record<string, string> = {};
  const walk = (relative: string) => {
    const path = relative ? join(root, relative) : root;
    const stat = lstatSync(path);
    let what = `${stat.mode.toString(8)} ${stat.uid}:${stat.gid}`;
    if (options.mtimes) what += ` mtime=${stat.mtimeMs}`;
    if (stat.isSymbolicLink()) what += ` -> ${readlinkSync(path)}`;
    else if (stat.isFile() && !BACKUP_FILES.has(relative)) what += ` sha256=${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
    entries[relative || "."] = what;
    if (!stat.isDirectory()) return;
    for (const name of readdirSync(path).sort()) {
      const child = relative ? `${relative}/${name}` : name;
      if (!exclude.some((e) => child === e || child.startsWith(`${e}/`))) walk(child);
    }
  };
  walk("");
  return entries;
}

/** Entries of `snap` under `prefix` (for "everything but the kept data dir"). */
export function under(snap: Record<string, string>, prefix: string): Record<string, string> {
  return Object.fromEntries(Object.entries(snap).filter(([path]) => path === prefix || path.startsWith(`${prefix}/`)));
}

export function without(snap: Record<string, string>, prefix: string): Record<string, string> {
  return Object.fromEntries(Object.entries(snap).filter(([path]) => !(path === prefix || path.startsWith(`${prefix}/`))));
}

/** The parent of a process: the agent's is install.sh's wrapper (its pid file holds the wrapper's pid). */
export function parentPid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}
