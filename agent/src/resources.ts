import { statfs } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import si from "systeminformation";
import type { cutover } from "@cutover/protocol";

/**
 * Samples the host's resources for Hello and Heartbeat. CPU and memory come
 * from systeminformation's argument-free calls; free disk is statfs of the
 * directories the agent writes to (exact for the state dir, no `df` spawn).
 */
export class ResourceSampler {
  private cpuPrimed = false;

  constructor(private readonly diskPaths: string[]) {
    // systeminformation's first currentLoad() measures over ~0.5 s; take it now so
    // the Hello is not held up by it (the Hello reports 0 % until then).
    void si.currentLoad().then(() => (this.cpuPrimed = true));
  }

  async sample(): Promise<cutover.v1.Resources.$Properties> {
    const [cpuLoad, mem, disks] = await Promise.all([
      this.cpuPrimed ? si.currentLoad().then((l) => l.currentLoad) : 0,
      si.mem(),
      Promise.all(this.diskPaths.map(diskFree)),
    ]);
    const [load1, load5, load15] = loadavg();
    return {
      cpuLoadPercent: Number.isFinite(cpuLoad) ? cpuLoad : 0,
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

async function diskFree(path: string): Promise<cutover.v1.DiskFree.$Properties> {
  const stats = await statfs(path);
  return { path, freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
}
