import type { AppSpec, CountOrPercent } from "@cutover/spec";
import { resolveCount } from "@cutover/spec";
import type { cutover } from "@cutover/protocol";

/** True when every key of the selector is a label of the host with the same value. */
export function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** Splits hosts (already sorted by name) into consecutive batches of the strategy's size. */
export function planBatches<T>(hosts: T[], batch: CountOrPercent): T[][] {
  const size = Math.max(1, resolveCount(batch, hosts.length));
  const batches: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) batches.push(hosts.slice(i, i + size));
  return batches;
}

/** The host-side part of the spec, as the Deploy command carries it. */
export function appDefinition(spec: AppSpec): cutover.v1.AppDefinition.$Properties {
  const check = spec.health.check;
  const keepPreviousMs = "keepPreviousMs" in spec.strategy ? spec.strategy.keepPreviousMs : 0;
  return {
    name: spec.app,
    run: {
      command: spec.run.command,
      env: spec.run.env,
      user: spec.run.user ?? "",
      stopSignal: spec.run.stopSignal,
      stopTimeoutMs: spec.run.stopTimeoutMs,
    },
    bluePort: spec.ports.blue,
    greenPort: spec.ports.green,
    proxy: { listenPort: spec.proxy.listen, protocol: spec.proxy.protocol, directives: spec.proxy.directives ?? [] },
    health: {
      kind: check.kind,
      path: check.kind === "http" ? check.path : "",
      expectStatus: check.kind === "http" ? check.expectStatus : 0,
      intervalMs: spec.health.intervalMs,
      liveIntervalMs: spec.health.liveIntervalMs,
      timeoutMs: spec.health.timeoutMs,
      healthyThreshold: spec.health.healthyThreshold,
      deadlineMs: spec.health.deadlineMs,
    },
    keepPreviousMs,
    limits: { memoryBytes: spec.limits.memoryBytes ?? 0, cpuCores: spec.limits.cpu ?? 0 },
    needs: {
      minFreeMemoryBytes: spec.resources.minFreeMemoryBytes ?? 0,
      minFreeDiskBytes: spec.resources.minFreeDiskBytes ?? 0,
      maxLoad: spec.resources.maxLoad ?? 0,
    },
  };
}
