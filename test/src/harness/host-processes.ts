import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

export interface HostProcess {
  kind: "instance" | "nginx";
  pid: number;
  label: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** App instances (from their records) and the managed nginx master an agent's state dir says are running. */
export function hostProcesses(stateDir: string): HostProcess[] {
  const found: HostProcess[] = [];
  const instances = join(stateDir, "instances");
  if (existsSync(instances)) {
    for (const app of readdirSync(instances)) {
      for (const file of readdirSync(join(instances, app)).filter((f) => f.endsWith(".json"))) {
        try {
          const record = JSON.parse(readFileSync(join(instances, app, file), "utf8")) as { pid: number };
          if (alive(record.pid)) found.push({ kind: "instance", pid: record.pid, label: `${app}/${file.replace(/\.json$/, "")}` });
        } catch {
          // a half-written record: nothing to stop
        }
      }
    }
  }
  const pidFile = join(stateDir, "nginx", "nginx.pid");
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    if (pid > 0 && alive(pid)) found.push({ kind: "nginx", pid, label: "nginx master" });
  }
  return found;
}

/** Every process other than nginx whose working directory is inside the state dir: app instances, orphans included. */
export function appProcessesUnder(stateDir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const inside = readlinkSync(`/proc/${entry}/cwd`).startsWith(`${stateDir}/`);
      if (inside && !readFileSync(`/proc/${entry}/cmdline`, "utf8").startsWith("nginx:") && alive(Number(entry))) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** Stops what a test agent left behind: instance process groups (SIGKILL) and the nginx master (SIGQUIT then KILL). */
export function stopHostProcesses(stateDir: string): void {
  for (const proc of hostProcesses(stateDir)) {
    try {
      if (proc.kind === "instance") process.kill(-proc.pid, "SIGKILL");
      else process.kill(proc.pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  for (const pid of appProcessesUnder(stateDir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/** The workers of the managed nginx master an agent's state dir names (its children in /proc). */
export function nginxWorkerPids(stateDir: string): number[] {
  const master = hostProcesses(stateDir).find((p) => p.kind === "nginx");
  if (!master) return [];
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      if (new RegExp(`^PPid:\\s+${master.pid}$`, "m").test(status) && readFileSync(`/proc/${entry}/cmdline`, "utf8").startsWith("nginx: worker")) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Real, effective, saved and filesystem uid of a process, from /proc/<pid>/status. */
export function processUids(pid: number): number[] {
  const line = /^Uid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "";
  return line.trim().split(/\s+/).map(Number);
}
