import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@cutover/log";
import type { cutover } from "@cutover/protocol";
import { checkOnce, isHealthError, waitHealthy, type HealthCheck } from "../health/index.js";
import { applyLimits, describeExit, detectCgroups, existingLimits, LimitsError, removeLimits, wrapInCgroup, type CgroupSupport, type LimitHandle } from "../limits/index.js";
import {
  adoptProcess,
  instanceRecordPath,
  processSpec,
  readInstanceRecord,
  readRssBytes,
  removeInstanceRecord,
  startProcess,
  stopProcess,
  belowAgent,
  type AppProcess,
  type RootApps,
} from "../process/index.js";
import type { Color } from "./app-state.js";
import type { InstanceControl, InstanceHandle } from "./instance-control.js";

function healthCheck(health: cutover.v1.HealthSpec.$Properties): HealthCheck {
  return health.kind === "tcp" ? { kind: "tcp" } : { kind: "http", path: health.path || "/", expectStatus: health.expectStatus || 200 };
}

function handleOf(proc: AppProcess): InstanceHandle {
  const r = proc.record;
  return { app: r.app, color: r.color, release: r.release, port: r.port, pid: r.pid };
}

/** InstanceControl over the process and health modules: records in STATE/instances, logs in STATE/logs. */
export function createInstanceControl(options: { stateDir: string; address: string; log: Logger; rootApps: RootApps; cgroups?: CgroupSupport }): InstanceControl {
  const { stateDir, address, log, rootApps } = options;
  const cgroups = options.cgroups ?? detectCgroups();
  if (cgroups.memory && cgroups.cpu) log.info("resource limits available", { cgroup: cgroups.version });
  else log.warn("resource limits unsupported here: an app whose spec asks for them will not start", { cgroup: cgroups.version, memory: cgroups.memory, cpu: cgroups.cpu, why: cgroups.why });
  /** The cgroups of each instance whose spec has limits. */
  const limitsOf = new WeakMap<AppProcess, LimitHandle>();
  /** "memory limit exceeded (limit 64 MiB)": read at the exit, before the cgroup goes. */
  const limitExits = new WeakMap<AppProcess, string>();
  const releaseLimits = async (proc: AppProcess): Promise<void> => {
    const limits = limitsOf.get(proc);
    if (!limits) return;
    limitsOf.delete(proc);
    const { left } = await removeLimits(limits);
    if (left.length > 0) log.warn("cgroups left behind; they are reused or removed at the next start", { app: limits.app, color: limits.color, left: left.map((l) => `${l.dir}: ${l.reason}`).join("; ") });
  };
  const logDir = join(stateDir, "logs");
  const known = new Map<string, AppProcess>();
  const stopping = new WeakSet<AppProcess>();
  const exitListeners: ((handle: InstanceHandle, how: { exitCode?: number; signal?: string; reason?: string }) => void)[] = [];
  const key = (app: string, color: Color) => `${app}/${color}`;
  /** Watches a process for an exit nobody asked for (children by event, adopted ones by polling /proc). */
  const watch = (proc: AppProcess) => {
    void proc.exited().then((status) => {
      const limits = limitsOf.get(proc);
      const reason = limits && describeExit(limits, status);
      if (reason) limitExits.set(proc, reason);
      if (stopping.has(proc)) return;
      void releaseLimits(proc);
      if (known.get(key(proc.record.app, proc.record.color)) === proc) known.delete(key(proc.record.app, proc.record.color));
      proc.release();
      for (const listener of exitListeners) listener(handleOf(proc), { exitCode: status.exitCode, signal: status.signal ?? undefined, ...(reason ? { reason } : {}) });
    });
  };

  const find = (app: string, color: Color): AppProcess | undefined => {
    const cached = known.get(key(app, color));
    if (cached?.isAlive()) return cached;
    known.delete(key(app, color));
    const path = instanceRecordPath(stateDir, app, color);
    if (!existsSync(path)) return undefined;
    let adopted;
    try {
      adopted = adoptProcess(readInstanceRecord(path));
    } catch (error) {
      log.warn("unreadable instance record", { app, color, error: (error as Error).message });
      return undefined;
    }
    if (!adopted.alive) return undefined;
    const limits = existingLimits(cgroups, app, color);
    if (limits) limitsOf.set(adopted.process, limits);
    known.set(key(app, color), adopted.process);
    watch(adopted.process);
    return adopted.process;
  };

  return {
    async start(definition, color, release, cwd) {
      const app = definition.name!;
      const port = color === "blue" ? definition.bluePort! : definition.greenPort!;
      // Every start checks run.user again (restarts and rollbacks too): a root app needs allow_root_apps.
      const spec = processSpec({ command: definition.run!.command!, env: definition.run!.env ?? {}, user: definition.run!.user || undefined }, { port, address, color, release, releaseDir: cwd }, { rootApps });
      const memoryBytes = Number(definition.limits?.memoryBytes ?? 0) || undefined;
      const cpuCores = Number(definition.limits?.cpuCores ?? 0) || undefined;
      // ERR_LIMITS_UNSUPPORTED ("limits unsupported here: ...") on a host without cgroups: nothing is started.
      const limits = memoryBytes || cpuCores ? await applyLimits(cgroups, { app, color, memoryBytes, cpuCores }) : undefined;
      let proc: AppProcess;
      try {
        // Through a wrapper that joins the cgroups and then execs the app: no instant outside the limits.
        // Below the agent's priority, then (with limits) through a wrapper that joins the cgroups
        // and execs the app: no instant outside the limits. The record holds the app's own argv.
        const prioritized = belowAgent(spec);
        const launch = limits ? wrapInCgroup(prioritized, limits).spec : prioritized;
        proc = await startProcess(launch, { app, color, release, port, address }, { stateDir, logDir });
      } catch (error) {
        if (limits) await removeLimits(limits);
        throw error;
      }
      if (limits) limitsOf.set(proc, limits);
      known.set(key(app, color), proc);
      watch(proc);
      log.info("instance started", { app, color, release, pid: proc.pid, port, ...(limits && { memoryLimitBytes: limits.memoryBytes, cpuLimitCores: limits.cpuCores }) });
      return handleOf(proc);
    },

    async waitHealthy(handle, health) {
      const proc = known.get(key(handle.app, handle.color));
      try {
        await waitHealthy({
          address,
          port: handle.port,
          check: healthCheck(health),
          intervalMs: health.intervalMs || 1000,
          timeoutMs: health.timeoutMs || 2000,
          healthyThreshold: health.healthyThreshold || 1,
          deadlineMs: health.deadlineMs || 60_000,
          isAlive: proc ? () => proc.isAlive() : undefined,
        });
      } catch (error) {
        if (proc && isHealthError(error, "ERR_PROCESS_EXITED_EARLY")) {
          // The exit watcher read the cgroup's OOM counter first: it was registered at the start.
          await proc.exited();
          const reason = limitExits.get(proc);
          if (reason) {
            throw new LimitsError(
              "ERR_LIMITS_MEMORY_EXCEEDED",
              `${reason}: ${handle.app} ${handle.color} (${handle.release}) was killed by the kernel before it passed its health gate; raise limits.memory in the spec or make the app use less (instance log: ${proc.record.logPath})`,
              { cause: error },
            );
          }
        }
        throw error;
      }
    },

    async checkOnce(handle, health) {
      const result = await checkOnce({ address, port: handle.port }, healthCheck(health), health.timeoutMs || 2000);
      return result.ok;
    },

    running(app, color) {
      const proc = find(app, color);
      return proc && handleOf(proc);
    },

    async stop(app, color, signal, timeoutMs) {
      const proc = find(app, color);
      if (!proc) return;
      stopping.add(proc);
      const result = await stopProcess(proc, { signal: signal as NodeJS.Signals, timeoutMs });
      proc.release();
      await releaseLimits(proc);
      known.delete(key(app, color));
      removeInstanceRecord(stateDir, proc.record);
      log.info("instance stopped", { app, color, release: proc.record.release, timedOut: result.timedOut, durationMs: Math.round(result.durationMs) });
    },

    rssBytes(handle) {
      return readRssBytes(handle.pid);
    },

    onUnexpectedExit(listener) {
      exitListeners.push(listener);
    },
  };
}
