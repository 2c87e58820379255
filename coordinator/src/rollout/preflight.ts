import { formatBytes } from "@cutover/log";
import type { AppSpec } from "@cutover/spec";
import type { HostLiveness } from "../fleet/fleet.js";
import type { HostRecord } from "../store/hosts.js";

/** One resource check on one host: what the deploy needs, what the host last reported. */
export interface ResourceCheck {
  what: "reachable" | "memory" | "disk" | "load";
  ok: boolean;
  need: string;
  have: string;
  reason?: string;
}

export interface HostCheck {
  name: string;
  ok: boolean;
  checks: ResourceCheck[];
}

/**
 * The resource preflight (docs/architecture.md, "Resource preflight": both copies share the host, so check
 * first): memory for a second copy — the running instance's measured memory
 * or the spec's min_free_memory, whichever is larger (rolling replaces in
 * place: only the minimum) — free disk for the release, and load per core.
 */
export function checkHost(spec: AppSpec, host: HostRecord, liveness: HostLiveness, artifactBytes = 0): HostCheck {
  const checks: ResourceCheck[] = [];
  const r = host.resources;
  // A `late` host is busy, not gone: its link answers pings and commands reach it.
  const reachable = liveness !== "unreachable";
  checks.push({
    what: "reachable",
    ok: reachable && r !== null,
    need: "online or late",
    have: liveness,
    ...(!reachable ? { reason: "the agent is not connected" } : r === null ? { reason: "the agent has not reported its resources yet" } : {}),
  });
  if (r) {
    const running = host.instances.filter((i) => i.app === spec.app && i.live).reduce((max, i) => Math.max(max, i.rssBytes), 0);
    const secondCopy = spec.strategy.type === "rolling" ? 0 : running;
    const memoryNeed = Math.max(secondCopy, spec.resources.minFreeMemoryBytes ?? 0);
    const memoryOk = r.memAvailableBytes >= memoryNeed;
    checks.push({
      what: "memory",
      ok: memoryOk,
      need: formatBytes(memoryNeed) + (secondCopy >= (spec.resources.minFreeMemoryBytes ?? 0) && secondCopy > 0 ? " (a second copy of the running instance)" : spec.resources.minFreeMemoryBytes ? " (resources.min_free_memory)" : ""),
      have: `${formatBytes(r.memAvailableBytes)} available`,
      ...(!memoryOk && { reason: `only ${formatBytes(r.memAvailableBytes)} of memory available, ${formatBytes(memoryNeed)} needed` }),
    });
    const diskNeed = (spec.resources.minFreeDiskBytes ?? 0) + artifactBytes * 3; // archive + unpacked tree, with room
    const diskOk = r.diskFreeBytes >= diskNeed;
    checks.push({
      what: "disk",
      ok: diskOk,
      need: formatBytes(diskNeed),
      have: `${formatBytes(r.diskFreeBytes)} free on ${r.diskPath || "the state dir"}`,
      ...(!diskOk && { reason: `only ${formatBytes(r.diskFreeBytes)} of disk free, ${formatBytes(diskNeed)} needed` }),
    });
    if (spec.resources.maxLoad !== undefined) {
      const perCore = r.loadAverage1m / Math.max(1, r.cpuCount);
      const loadOk = perCore <= spec.resources.maxLoad;
      checks.push({
        what: "load",
        ok: loadOk,
        need: `≤ ${spec.resources.maxLoad} per core`,
        have: `${perCore.toFixed(2)} per core`,
        ...(!loadOk && { reason: `load per core is ${perCore.toFixed(2)}, above max_load ${spec.resources.maxLoad}` }),
      });
    }
  }
  return { name: host.name, ok: checks.every((c) => c.ok), checks };
}
