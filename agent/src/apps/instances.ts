import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "@cutover/log";
import type { cutover } from "@cutover/protocol";
import { checkOnce, waitHealthy, type HealthCheck } from "../health/index.js";
import {
  adoptProcess,
  instanceRecordPath,
  processSpec,
  readInstanceRecord,
  readRssBytes,
  removeInstanceRecord,
  startProcess,
  stopProcess,
  type AppProcess,
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
export function createInstanceControl(options: { stateDir: string; address: string; log: Logger }): InstanceControl {
  const { stateDir, address, log } = options;
  const logDir = join(stateDir, "logs");
  const known = new Map<string, AppProcess>();
  const stopping = new WeakSet<AppProcess>();
  const exitListeners: ((handle: InstanceHandle, how: { exitCode?: number; signal?: string }) => void)[] = [];
  const key = (app: string, color: Color) => `${app}/${color}`;
  /** Watches a process for an exit nobody asked for (children by event, adopted ones by polling /proc). */
  const watch = (proc: AppProcess) => {
    void proc.exited().then((status) => {
      if (stopping.has(proc)) return;
      if (known.get(key(proc.record.app, proc.record.color)) === proc) known.delete(key(proc.record.app, proc.record.color));
      proc.release();
      for (const listener of exitListeners) listener(handleOf(proc), { exitCode: status.exitCode, signal: status.signal ?? undefined });
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
    known.set(key(app, color), adopted.process);
    watch(adopted.process);
    return adopted.process;
  };

  return {
    async start(definition, color, release, cwd) {
      const app = definition.name!;
      const port = color === "blue" ? definition.bluePort! : definition.greenPort!;
      const spec = processSpec({ command: definition.run!.command!, env: definition.run!.env ?? {}, user: definition.run!.user || undefined }, { port, address, color, release, releaseDir: cwd });
      const proc = await startProcess(spec, { app, color, release, port, address }, { stateDir, logDir });
      known.set(key(app, color), proc);
      watch(proc);
      log.info("instance started", { app, color, release, pid: proc.pid, port });
      return handleOf(proc);
    },

    async waitHealthy(handle, health) {
      const proc = known.get(key(handle.app, handle.color));
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
