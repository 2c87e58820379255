import { statfs } from "node:fs/promises";
import { cpus, loadavg, type CpuInfo } from "node:os";
import si from "systeminformation";
import type { cutover } from "@cutover/protocol";

/**
 * Samples the host's resources for Hello and Heartbeat. Memory comes from
 * systeminformation's argument-free, asynchronous mem(); the CPU load is the
 * busy share of Node's per-core times since the previous sample
 * (systeminformation's currentLoad() runs `cat /proc/stat | grep` through a
 * shell synchronously on Linux, which would block the agent's event loop on
 * every heartbeat); free disk is statfs of the directories the agent writes
 * to (exact for the state dir, no `df` spawn).
 */
export class ResourceSampler {
  /** The CPU times of the last sample: the load reported is the share busy since then. */
  private lastCpu: CpuTimes;

  constructor(private readonly diskPaths: string[]) {
    // Read once now, so the first Hello already reports the load since the agent started.
    this.lastCpu = cpuTimes(cpus());
  }

  async sample(): Promise<cutover.v1.Resources.$Properties> {
    const [mem, disks] = await Promise.all([si.mem(), Promise.all(this.diskPaths.map(diskFree))]);
    const cpu = cpuTimes(cpus());
    const cpuLoad = busyPercent(this.lastCpu, cpu);
    this.lastCpu = cpu;
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

/** CPU time of every core together, milliseconds: busy and total. */
export interface CpuTimes {
  busy: number;
  total: number;
}

/** Idle is not busy; user, nice, sys and irq are. */
export function cpuTimes(cores: Pick<CpuInfo, "times">[]): CpuTimes {
  let busy = 0;
  let total = 0;
  for (const { times } of cores) {
    const coreBusy = times.user + times.nice + times.sys + times.irq;
    busy += coreBusy;
    total += coreBusy + times.idle;
  }
  return { busy, total };
}

/** Percent of CPU time busy between two readings; 0 when no time passed. */
export function busyPercent(before: CpuTimes, after: CpuTimes): number {
  if (after.total <= before.total) return 0;
  const percent = ((after.busy - before.busy) / (after.total - before.total)) * 100;
  return Number.isFinite(percent) ? Math.min(100, Math.max(0, percent)) : 0;
}

async function diskFree(path: string): Promise<cutover.v1.DiskFree.$Properties> {
  const stats = await statfs(path);
  return { path, freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
}
