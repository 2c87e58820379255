// /proc readings for the benchmarks: resident memory, CPU time, process trees,
// and long-running daemons started with their output in a log file (so a
// chatty process is not slowed by, nor slows, the bench reading its pipes).
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { closeSync, openSync, readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat times (getconf CLK_TCK; 100 on Linux x86). */
export const CLK_TCK = 100;

/** VmRSS of a process, bytes (NaN when it is gone). */
export function rssBytes(pid) {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? Number.NaN : Number(kb) * 1024;
  } catch {
    return Number.NaN;
  }
}

function statFields(pid) {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which may itself contain spaces and parentheses.
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** utime + stime of a process, seconds of CPU. */
export function cpuSeconds(pid) {
  try {
    const f = statFields(pid);
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** The process and all its descendants (by parent pid), live ones only. */
export function processTree(pid) {
  const children = new Map();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(entry)[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  const tree = [];
  const visit = (p) => {
    tree.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return tree;
}

export function alive(pid) {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/**
 * Samples RSS and CPU of groups of processes every `intervalMs` for `durationMs`.
 * `groups` maps a label to a function returning the pids to count now.
 * Returns per group: RSS mean/max (bytes) and CPU % of one core over the window.
 */
export async function sampleGroups(groups, durationMs, intervalMs = 1000) {
  const rssOf = (pids) => pids.reduce((sum, p) => sum + (rssBytes(p) || 0), 0);
  const state = Object.fromEntries(Object.keys(groups).map((label) => [label, { cpu0: new Map(groups[label]().map((p) => [p, cpuSeconds(p)])), rss: [] }]));
  const started = performance.now();
  while (performance.now() - started < durationMs) {
    for (const [label, s] of Object.entries(state)) s.rss.push(rssOf(groups[label]()));
    await sleep(Math.min(intervalMs, Math.max(0, durationMs - (performance.now() - started))));
  }
  const seconds = (performance.now() - started) / 1000;
  return Object.fromEntries(
    Object.entries(state).map(([label, s]) => {
      const pids = groups[label]();
      // A process that started during the window counts from zero; one that ended is lost (rare when idle).
      const cpu = pids.reduce((sum, p) => sum + ((cpuSeconds(p) || 0) - (s.cpu0.get(p) ?? 0)), 0);
      return [label, { processes: pids.length, rssMeanBytes: s.rss.reduce((a, b) => a + b, 0) / s.rss.length, rssMaxBytes: Math.max(...s.rss), cpuPercentOfCore: (100 * cpu) / seconds, seconds }];
    }),
  );
}

/**
 * A daemon: `node ARGS`, stdout and stderr appended to `logFile`; with `nofile`, its
 * open-files limit raised to the hard limit first (node cannot call setrlimit).
 * Returns { pid, exited, kill(signal) }.
 */
export function spawnDaemon(nodeArgs, { logFile, env = {}, nofile } = {}) {
  const fd = openSync(logFile, "a");
  const [file, args] = nofile
    ? ["bash", ["-c", 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, ...nodeArgs]]
    : [process.execPath, nodeArgs];
  const child = spawn(file, args, { env: { ...process.env, ...env }, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const exited = once(child, "exit").then(([code, signal]) => ({ code, signal }));
  return {
    pid: child.pid,
    child,
    exited,
    async kill(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exited;
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const MiB = 2 ** 20;

/** The hard open-files limit this process's children can raise theirs to. */
export function hardNofile() {
  const text = execFileSync("bash", ["-c", "ulimit -Hn"], { encoding: "utf8" }).trim();
  return text === "unlimited" ? Number.POSITIVE_INFINITY : Number(text);
}
