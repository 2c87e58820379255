import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, statSync } from "node:fs";
import { once } from "node:events";
import { AppProcess } from "./app-process.js";
import { ProcessError } from "./errors.js";
import { DEFAULT_LOG_ROTATION, instanceLogPath, openInstanceLog, type LogRotation } from "./log-file.js";
import { readCmdline, readProcStat } from "./proc.js";
import { checkIdentity, writeInstanceRecord, type InstanceIdentity, type InstanceRecord } from "./record.js";
import type { ProcessSpec } from "./spec.js";
import { unprotectFromOom } from "./priority.js";

export interface StartProcessOptions {
  /** The agent's state dir; the record goes to `<stateDir>/instances/<app>/<color>.json`. */
  stateDir: string;
  /** Instance logs go to `<logDir>/<app>/<color>.log`. */
  logDir: string;
  logRotation?: LogRotation;
  /** Wall clock for `startedAtMs`. */
  now?: () => number;
}

/**
 * Spawns an instance so that it outlives the agent: its own session and
 * process group, output appended to its log file, not ref'ed by the agent's
 * event loop. Records pid, start time and argv before returning, so a later
 * agent can adopt it.
 */
export async function startProcess(spec: ProcessSpec, identity: InstanceIdentity, options: StartProcessOptions): Promise<AppProcess> {
  checkIdentity(identity);
  const name = `${identity.app} ${identity.color}`;
  const failed = (why: string, cause?: unknown) =>
    new ProcessError("ERR_PROCESS_SPAWN_FAILED", `cannot start ${name} (release ${identity.release}): ${why}`, { cause });
  if (!isDirectory(spec.cwd)) throw failed(`its working directory ${spec.cwd} does not exist`);

  const logPath = instanceLogPath(options.logDir, identity.app, identity.color);
  const fd = openInstanceLog(logPath, options.logRotation ?? DEFAULT_LOG_ROTATION);
  let child: ChildProcess;
  try {
    child = spawn(spec.file, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      uid: spec.uid,
      gid: spec.gid,
      detached: true,
      stdio: ["ignore", fd, fd],
    });
  } catch (error) {
    throw failed(`${spec.file}: ${(error as Error).message}`, error);
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    const [error] = (await once(child, "error")) as [NodeJS.ErrnoException];
    const hint = error.code === "ENOENT" ? ` (is ${spec.file} installed and on PATH=${spec.env.PATH ?? ""}, or relative to ${spec.cwd}?)` : "";
    throw failed(`${error.message}${hint}`, error);
  }
  child.unref();

  // No await since spawn: the child cannot have been reaped yet, so /proc/<pid> is there.
  const stat = readProcStat(pid);
  if (!stat) {
    killGroup(pid);
    throw failed(`/proc/${pid}/stat is unreadable right after spawn; is /proc mounted?`);
  }
  const cmdline = spec.shownArgv ?? readCmdline(pid);
  try {
    unprotectFromOom(pid);
  } catch (error) {
    killGroup(pid);
    throw failed(`cannot reset its OOM score: ${(error as Error).message}`, error);
  }
  const record: InstanceRecord = {
    ...pickIdentity(identity),
    pid,
    startTime: stat.startTime,
    cmdline: cmdline && cmdline.length > 0 ? cmdline : [spec.file, ...spec.args],
    logPath,
    startedAtMs: (options.now ?? Date.now)(),
  };
  try {
    await writeInstanceRecord(options.stateDir, record);
  } catch (error) {
    // An instance nobody can find again would hold its port forever.
    killGroup(pid);
    throw failed(`cannot save its record under ${options.stateDir}: ${(error as Error).message}`, error);
  }
  return new AppProcess(record, child);
}

function pickIdentity({ app, color, release, port, address }: InstanceIdentity): InstanceIdentity {
  return { app, color, release, port, address };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function killGroup(pid: number): void {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // Already gone.
  }
}
