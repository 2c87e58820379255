import type { cutover } from "@cutover/protocol";
import type { AppInstanceReport, HostResources } from "../store/hosts.js";

/** Converts the wire Resources into the stored/API shape (the state-dir disk first). */
export function resourcesFromWire(wire: cutover.v1.Resources.$Properties): HostResources {
  const disk = wire.disks?.[0];
  return {
    cpuLoadPercent: wire.cpuLoadPercent ?? 0,
    memTotalBytes: Number(wire.memTotalBytes ?? 0),
    memAvailableBytes: Number(wire.memAvailableBytes ?? 0),
    diskFreeBytes: Number(disk?.freeBytes ?? 0),
    diskTotalBytes: Number(disk?.totalBytes ?? 0),
    diskPath: disk?.path ?? "",
    loadAverage1m: wire.load1 ?? 0,
    loadAverage5m: wire.load5 ?? 0,
    loadAverage15m: wire.load15 ?? 0,
    cpuCount: wire.cpuCount ?? 0,
    sampledAt: Number(wire.sampledAtUnixMs ?? 0),
  };
}

export function instancesFromWire(wire: cutover.v1.AppInstance.$Properties[] | null | undefined): AppInstanceReport[] {
  return (wire ?? []).map((i) => ({
    app: i.app ?? "",
    color: i.color ?? "",
    release: i.release ?? "",
    port: i.port ?? 0,
    state: i.state ?? "",
    pid: i.pid ?? 0,
    live: i.live ?? false,
    rssBytes: Number(i.rssBytes ?? 0),
  }));
}
