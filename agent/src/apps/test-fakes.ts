// Fakes behind the small interfaces AppManager runs on (ProcessControl,
// AppProxy, ReleaseDirs), for its unit tests. A `FakeHost` is what outlives an
// agent: its app processes and its nginx. A fresh AppManager over the same
// host and state dir is an agent restarted after a SIGKILL.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";
import { createLogger } from "@cutover/log";
import { v1 } from "@cutover/protocol";
import { AppManager } from "./app-manager.js";
import type { AppProxy, ProxySwitch } from "./app-proxy.js";
import type { Color } from "./app-state.js";
import { portOf, type AppDefinition } from "./definition.js";
import type { ColorHandle, ColorReport, ProcessControl, ReleaseLaunch } from "./process-control.js";
import type { ReleaseDirs } from "../releases/release-dirs.js";
import type { FaultPoint } from "./transaction.js";
import { SecretVault } from "./secret-vault.js";

/** What the next call of each kind does wrong; "persist": the switch's fallback file is not written. */
export type FaultKind = "start" | "gate" | "switch" | "persist" | "fetch" | "resources" | "prune";

export interface FakeProcess extends ColorHandle {
  /** Passed its health gate. */
  gated: boolean;
}

/** A typed error like the real modules throw. */
export function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * One host as the agent finds it: app processes by app/color, the port each
 * app's proxy serves, and the faults armed for the next calls. Every breach of
 * the invariant (the proxy points at a port without a gated process) is kept
 * in `violations`.
 */
export class FakeHost {
  readonly processes = new Map<string, FakeProcess>();
  readonly serving = new Map<string, number>();
  readonly violations: string[] = [];
  /** The next call of that kind fails with this error (then the fault is spent). */
  readonly failNext = new Map<FaultKind, Error>();
  /** Every start of that release fails with this error. */
  readonly failStartOf = new Map<string, Error>();
  /** While true, the proxy serves nothing (an in-place deploy: the host is out of the load balancer). */
  outOfService = false;
  private nextPid = 1000;

  constructor(readonly definition: AppDefinition) {}

  take(kind: FaultKind): void {
    const error = this.failNext.get(kind);
    if (!error) return;
    this.failNext.delete(kind);
    throw error;
  }

  pid(): number {
    return this.nextPid++;
  }

  /** The process on `app`'s served port, if it is gated; a breach is recorded otherwise. */
  check(app: string, when: string): void {
    const port = this.serving.get(app);
    if (port === undefined || this.outOfService) return;
    const serving = [...this.processes.values()].find((p) => p.app === app && p.port === port);
    if (!serving?.gated) this.violations.push(`${when}: the proxy serves port ${port} and ${serving ? `${serving.color} has not passed its gate` : "nothing runs there"}`);
  }

  /** app/color → release of every process, sorted: what runs on the host. */
  running(): string[] {
    return [...this.processes.values()].map((p) => `${p.color}=${p.release}`).sort();
  }
}

/** ProcessControl over a FakeHost's processes: start, gate and stop as the supervisors do, instantly. */
export class FakeProcesses implements ProcessControl {
  readonly address = "127.0.0.1";
  private readonly gates = new Map<number, Error | null>();
  private readonly inService = new Set<string>();

  constructor(private readonly host: FakeHost) {}

  async start(definition: AppDefinition, color: Color, release: string): Promise<ColorHandle> {
    const key = `${definition.name}/${color}`;
    if (this.host.processes.has(key)) throw codedError("ERR_INSTANCE_STATE", `cannot start ${key}: it runs`);
    this.host.take("start");
    const refused = this.host.failStartOf.get(release);
    if (refused) throw refused;
    const process: FakeProcess = { app: definition.name, color, release, port: portOf(definition, color), pid: this.host.pid(), gated: false };
    this.host.processes.set(key, process);
    const gate = this.host.failNext.get("gate") ?? null;
    this.host.failNext.delete("gate");
    this.gates.set(process.pid, gate);
    return { ...process };
  }

  async waitHealthy(handle: ColorHandle): Promise<void> {
    const gate = this.gates.get(handle.pid);
    this.gates.delete(handle.pid);
    if (gate) throw gate;
    const process = this.host.processes.get(`${handle.app}/${handle.color}`);
    if (process?.pid === handle.pid) process.gated = true;
  }

  async portIsFree(): Promise<boolean> {
    return true;
  }

  async checkOnce(handle: ColorHandle): Promise<boolean> {
    return this.host.processes.get(`${handle.app}/${handle.color}`)?.gated ?? false;
  }

  adopt(app: string, color: Color, options: { inService: boolean; launchOf: (release: string) => ReleaseLaunch }): ColorHandle | undefined {
    if (options.inService) this.inService.add(`${app}/${color}`);
    return this.running(app, color);
  }

  running(app: string, color: Color): ColorHandle | undefined {
    const process = this.host.processes.get(`${app}/${color}`);
    return process && { app, color, release: process.release, port: process.port, pid: process.pid };
  }

  drain(app: string, color: Color): void {
    this.inService.delete(`${app}/${color}`);
  }

  serve(app: string, color: Color): void {
    this.inService.add(`${app}/${color}`);
  }

  async stop(app: string, color: Color): Promise<void> {
    const process = this.host.processes.get(`${app}/${color}`);
    if (!process) return;
    if (!this.host.outOfService && this.host.serving.get(app) === process.port) this.host.violations.push(`stopped ${app} ${color} (${process.release}) while the proxy serves it`);
    this.host.processes.delete(`${app}/${color}`);
  }

  report(app: string, color: Color): ColorReport | undefined {
    const process = this.host.processes.get(`${app}/${color}`);
    return process && { state: process.gated ? "healthy" : "starting", release: process.release, pid: process.pid, rssBytes: 0 };
  }

  onUnexpectedExit(): void {}

  onRestarted(): void {}
}

/** The app's proxy on a FakeHost: a switch to a port without a gated process is a breach. */
export class FakeProxy implements AppProxy {
  readonly switches: { port: number; forceReload: boolean }[] = [];

  constructor(private readonly host: FakeHost) {}

  async prepare(): Promise<void> {}

  /** What the host's real proxy checks (names, ports, TLS secrets) needs nginx: the fake admits everything. */
  admit(): void {}

  async switchTo(definition: AppDefinition, port: number, options: { forceReload?: boolean } = {}): Promise<ProxySwitch> {
    // A failed switch has put the previous config back (switchSite's contract).
    this.host.take("switch");
    this.switches.push({ port, forceReload: options.forceReload ?? false });
    this.host.serving.set(definition.name, port);
    this.host.check(definition.name, `switch to ${port}`);
    const notPersisted = this.host.failNext.get("persist") ?? null;
    this.host.failNext.delete("persist");
    return { durationMs: 1, mode: "live", reloaded: false, handoverMs: 0, persisted: Promise.resolve(notPersisted) };
  }

  /** Each pretest: its port, and whether a process had been started there by then. */
  readonly pretested: { port: number; started: boolean }[] = [];

  async pretest(definition: AppDefinition, port: number): Promise<void> {
    const started = [...this.host.processes.values()].some((p) => p.app === definition.name && p.port === port);
    this.pretested.push({ port, started });
  }

  /** Each warm-up: its port, whether a gated process ran there, and how many switches came before it. */
  readonly warmed: { port: number; gated: boolean; switchesBefore: number }[] = [];

  async warm(definition: AppDefinition, port: number): Promise<void> {
    const there = [...this.host.processes.values()].find((p) => p.app === definition.name && p.port === port);
    this.warmed.push({ port, gated: there?.gated ?? false, switchesBefore: this.switches.length });
  }

  async serving(app: string): Promise<number | null> {
    return this.host.serving.get(app) ?? null;
  }

  async remove(app: string): Promise<boolean> {
    this.host.take("switch");
    return this.host.serving.delete(app);
  }
}

/** Release dirs that are there at once; `fetch` faults fail the next one. */
export function fakeReleases(host: FakeHost): ReleaseDirs {
  return {
    dirOf: async (app, { release }) => {
      host.take("fetch");
      return `/fake/releases/${app}/${release}`;
    },
    prune: () => host.take("prune"),
    removeAll: () => false,
  };
}

export interface Agent {
  manager: AppManager;
  proxy: FakeProxy;
  /** Events streamed, as "step: message". */
  events: string[];
}

export interface AgentOptions {
  /** The agent "dies" at this fault point: the transaction stops there for good, as after a SIGKILL. */
  dieAt?: FaultPoint;
}

/** An AppManager on `host` with its state in `stateDir`; `died` resolves when it reaches `dieAt`. */
export function fakeAgent(host: FakeHost, stateDir: string, options: AgentOptions = {}): Agent & { died: Promise<FaultPoint> } {
  const events: string[] = [];
  let died!: (point: FaultPoint) => void;
  const diedAt = new Promise<FaultPoint>((resolve) => (died = resolve));
  const proxy = new FakeProxy(host);
  const manager = new AppManager({
    stateDir,
    secrets: new SecretVault(),
    proxy,
    colors: new FakeProcesses(host),
    admission: { rootApps: "allow" },
    releases: fakeReleases(host),
    resources: async () => {
      host.take("resources");
      return { memAvailableBytes: 8 << 30, diskFreeBytes: 8 << 30, loadPerCore: 0.1 };
    },
    emit: (event) => events.push(`${event.step}: ${event.message}`),
    log: createLogger("test", { write: () => undefined }),
    faultHook: (point) => {
      host.check(host.definition.name, `at ${point}`);
      if (point !== options.dieAt) return;
      died(point);
      return new Promise<never>(() => undefined);
    },
  });
  return { manager, proxy, events, died: diedAt };
}

/** A state dir of its own, deleted after the test. */
export function stateDirFor(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-apps-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const OK = v1.CommandResult.Status.OK;
export const FAILED = v1.CommandResult.Status.FAILED;
