import { readFileSync } from "node:fs";
import { readFile, statfs } from "node:fs/promises";
import { cpus, freemem, loadavg, totalmem } from "node:os";
import type { cutover } from "@cutover/protocol";

const PROC_STAT = "/proc/stat";
const PROC_MEMINFO = "/proc/meminfo";

/**
 * Samples the host's resources for Hello and Heartbeat. CPU and memory are read from
 * /proc (what systeminformation read there, without loading it: it cost the idle agent
 * megabytes, and spawned a shell for /proc/stat on every heartbeat); free disk is statfs
 * of the directories the agent writes to (exact for the state dir, no `df` spawn).
 */
export class ResourceSampler {
  /** The CPU counters of the last sample: the load reported is the share busy since then. */
  private lastCpu: CpuTimes | null;

  constructor(private readonly diskPaths: string[]) {
    // Read once now, so the first Hello already reports the load since the agent started.
    this.lastCpu = parseCpuTimes(readOrEmpty(PROC_STAT));
  }

  async sample(): Promise<cutover.v1.Resources.$Properties> {
    const [stat, meminfo, disks] = await Promise.all([
      readFile(PROC_STAT, "utf8").catch(() => ""),
      readFile(PROC_MEMINFO, "utf8").catch(() => ""),
      Promise.all(this.diskPaths.map(diskFree)),
    ]);
    const cpu = parseCpuTimes(stat);
    const cpuLoad = busyPercent(this.lastCpu, cpu);
    this.lastCpu = cpu ?? this.lastCpu;
    const mem = parseMeminfo(meminfo);
    const [load1, load5, load15] = loadavg();
    return {
      cpuLoadPercent: cpuLoad,
      memTotalBytes: mem.total,
      memAvailableBytes: mem.available,
      disks,
      load1,
      load5,
      load15,
      cpuCount: cpus().length,
      sampledAtUnixMs: Date.now(),
    };
  }
}

/** The all-CPU line of /proc/stat, in clock ticks: busy and total since boot. */
export interface CpuTimes {
  busy: number;
  total: number;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * `cpu  user nice system idle iowait irq softirq steal guest guest_nice`: idle and iowait
 * are not busy; guest time is already counted in user, so it is left out of the total.
 */
export function parseCpuTimes(stat: string): CpuTimes | null {
  const line = stat.split("\n").find((l) => l.startsWith("cpu "));
  if (line === undefined) return null;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** Percent of CPU time busy between two readings; 0 when either is missing or no tick passed. */
export function busyPercent(before: CpuTimes | null, after: CpuTimes | null): number {
  if (before === null || after === null || after.total <= before.total) return 0;
  const percent = ((after.busy - before.busy) / (after.total - before.total)) * 100;
  return Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
}

/** MemTotal and MemAvailable (kB in the file); os' figures when the file says nothing. */
export function parseMeminfo(meminfo: string): { total: number; available: number } {
  const kib = (name: string): number | null => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(meminfo);
    return match?.[1] === undefined ? null : Number(match[1]) * 1024;
  };
  return { total: kib("MemTotal") ?? totalmem(), available: kib("MemAvailable") ?? freemem() };
}

async function diskFree(path: string): Promise<cutover.v1.DiskFree.$Properties> {
  const stats = await statfs(path);
  return { path, freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
}
