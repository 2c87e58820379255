import type { AuditEntry } from "@cutover/coordinator";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { stopHostProcesses } from "./host-processes.js";
import { AGENT_BIN, CUTOVER_BIN, readAdminToken, runCli, spawnWatched, tempDir, type CliResult, type WatchedProcess } from "./processes.js";


/** One row of `cutover audit --json`. */
export type AuditRow = AuditEntry;
export interface TestContext {
  teardown(fn: () => void | Promise<void>): void;
}

/** A real `cutover server` process on 127.0.0.1 with its own data dir. */
/** How long a coordinator may take to listen: no product deadline, so a test waits as an operator would. */
const COORDINATOR_START_MS = 60_000;

export class CoordinatorProcess {
  process!: WatchedProcess;
  url = "";
  adminToken = "";
  private port = 0;

  constructor(readonly dataDir: string, private readonly extraArgs: string[]) {}

  async start(): Promise<void> {
    this.process = spawnWatched("coordinator", CUTOVER_BIN, [
      "server", "--data-dir", this.dataDir, "--listen", `127.0.0.1:${this.port}`, ...this.extraArgs,
    ]);
    // Its start opens the store and resumes what was running before any listen: on a loaded
    // 2-core machine (seen at load 15) that outlasts a line's usual wait.
    const line = await this.process.waitForLine(/^cutover server listening on /, 0, COORDINATOR_START_MS);
    this.url = line.slice("cutover server listening on ".length).trim();
    this.port = Number(new URL(this.url).port);
    // A member of a shared store that does not lead at its first start writes no admin token: its cluster hands it one.
    if (!this.extraArgs.includes("--store") || existsSync(join(this.dataDir, "admin-token"))) this.adminToken = readAdminToken(this.dataDir);
  }

  /** Kills and starts again on the same port and data dir. */
  async restart(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    await this.process.kill(signal);
    await this.start();
  }

  cli(args: string[], token = this.adminToken): Promise<CliResult> {
    return runCli(args, { CUTOVER_URL: this.url, CUTOVER_TOKEN: token, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml" });
  }

  /** The CLI with `--json`, its stdout parsed as `T`; throws with everything it printed when that is not JSON. */
  async cliJson<T>(args: string[]): Promise<CliResult & { json: T }> {
    const result = await this.cli([...args, "--json"]);
    try {
      return { ...result, json: JSON.parse(result.stdout) as T };
    } catch {
      throw new Error(`${args.join(" ")} printed no JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
    }
  }

  /** A new API token with `role` under `name`, as an admin makes one (`token create --api`). */
  async apiToken(role: "read" | "deploy" | "admin", name: string): Promise<string> {
    const { json } = await this.cliJson<{ token: string }>(["token", "create", "--api", "--role", role, "--name", name]);
    return json.token;
  }

  /** A one-time enrollment token; `binding` fixes the labels and address the host gets (else it keeps what its agent presents). */
  async enrollmentToken(binding: { labels?: string; address?: string } = {}): Promise<string> {
    const args = ["token", "create"];
    if (binding.labels) args.push("--labels", binding.labels);
    if (binding.address) args.push("--address", binding.address);
    const result = await this.cli(args);
    if (result.exitCode !== 0) throw new Error(`token create failed: ${result.stderr}`);
    return result.stdout.trim();
  }
}

export async function startCoordinator(t: TestContext & { teardown(fn: () => void): void }, extraArgs: string[] = ["--heartbeat-interval", "1s"]): Promise<CoordinatorProcess> {
  const coordinator = new CoordinatorProcess(join(tempDir(t, "cutover-coord-"), "data"), extraArgs);
  t.teardown(() => coordinator.process?.kill("SIGKILL"));
  await coordinator.start();
  return coordinator;
}

export interface AgentOptions {
  name: string;
  address: string;
  labels?: string;
  token?: string;
  stateDir?: string;
  /** nginx switch mode; the agent always runs its own (managed) nginx in tests. */
  switchMode?: "reload" | "live";
  /** More agent flags. */
  extraArgs?: string[];
  /** More environment for the agent process (e.g. CUTOVER_FAULT_KILL_AT). */
  env?: NodeJS.ProcessEnv;
  /**
   * The file node runs as the agent: default agent/bin/cutover-agent.js (agent/dist); the
   * footprint bench passes the one-file bundle install.sh installs (dist/cutover-agent.mjs).
   */
  entry?: string;
  /** Node.js flags before the entry, as install.sh's wrapper passes them (e.g. V8 heap limits). */
  nodeFlags?: string[];
  /** The agent's niceness, as install.sh's unit sets it (Nice=); default: the test's own. */
  niceness?: number;
}

/** A real `cutover-agent` process. */
export class AgentProcess {
  process!: WatchedProcess;
  /** `coordinator.url` is what `--coordinator` gets: one URL, or a cluster's members joined with commas. */
  constructor(readonly options: AgentOptions & { stateDir: string }, private readonly coordinator: Pick<CoordinatorProcess, "url">) {}

  start(): WatchedProcess {
    const args = [
      "--coordinator", this.coordinator.url,
      "--state-dir", this.options.stateDir,
      "--name", this.options.name,
      "--address", this.options.address,
      "--max-backoff", "500ms",
      "--config", "/dev/null",
      "--nginx", "managed",
      "--switch", this.options.switchMode ?? "auto",
    ];
    if (this.options.labels) args.push("--labels", this.options.labels);
    if (this.options.token) args.push("--token", this.options.token);
    if (this.options.extraArgs) args.push(...this.options.extraArgs);
    // spawnWatched runs `node <file> <args>`: node's own flags must come before the entry file.
    const [file, ...rest] = [...(this.options.nodeFlags ?? []), this.options.entry ?? AGENT_BIN, ...args] as [string, ...string[]];
    this.process = spawnWatched(`agent ${this.options.name}`, file, rest, this.options.env, this.options.niceness);
    return this.process;
  }

  /** Resolves when the agent says it is online (after `from`, a mark of its output). */
  online(from = 0): Promise<string> {
    return this.process.waitForLine(/coordinator link .*to=online/, from);
  }
}

/**
 * Tests of this process that have agents running. Fleets (agents, their nginx and apps, a
 * load client) are what a 2-core machine cannot run several of side by side: ava runs two
 * test files at once, so within a file the tests that start agents must be `test.serial`.
 */
const testsWithAgents = new Set<object>();

function claimFleetSlot(t: TestContext): void {
  if (testsWithAgents.has(t)) return;
  if (testsWithAgents.size > 0) {
    throw new Error("another test of this file has agents running: tests that start agents must be test.serial (one fleet per test file at a time)");
  }
  testsWithAgents.add(t);
  t.teardown(() => {
    testsWithAgents.delete(t);
  });
}

export async function startAgent(t: TestContext & { teardown(fn: () => void): void }, coordinator: Pick<CoordinatorProcess, "url">, options: AgentOptions): Promise<AgentProcess> {
  claimFleetSlot(t);
  const agent = new AgentProcess({ ...options, stateDir: options.stateDir ?? join(tempDir(t, "cutover-agent-"), "state") }, coordinator);
  // Registered before the temp dir's removal runs (teardowns run in reverse): kill what the agent left running.
  t.teardown(() => stopHostProcesses(agent.options.stateDir));
  t.teardown(() => agent.process?.kill("SIGKILL"));
  agent.start();
  return agent;
}

export interface Fleet {
  coordinator: CoordinatorProcess;
  agents: AgentProcess[];
  /** Loopback addresses of the hosts, in agent order. */
  addresses: string[];
  /** Front load-balancer agents and their addresses (empty unless asked for). */
  lbAgents: AgentProcess[];
  lbAddresses: string[];
  /** A temp dir for specs and such. */
  dir: string;
}

/**
 * A coordinator and `hosts` agents named web-1.. on 127.A.B.11, .12, ...
 * (A.B random per fleet, so test files running in parallel do not meet),
 * each with its own managed nginx, all online.
 */
export async function startFleet(
  t: TestContext & { teardown(fn: () => void): void },
  options: {
    hosts: number;
    switchMode?: "reload" | "live";
    /** Labels of every app host, or per host (index from 0). */
    labels?: string | ((index: number) => string);
    /** Front load-balancer hosts (named lb-1.., labelled role=lb) on 127.A.B.51.. */
    lbHosts?: number;
    /** What every agent runs (default agent/dist): e.g. the bundle install.sh installs, with its node flags. */
    agent?: Pick<AgentOptions, "entry" | "nodeFlags" | "niceness">;
  },
): Promise<Fleet> {
  // Heartbeats every second, as a small fleet honestly runs; the ping timeout (what cuts a session) is the product default.
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s"]);
  const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const addresses = Array.from({ length: options.hosts }, (_, i) => `${base}.${11 + i}`);
  const labelsOf = (i: number) => (typeof options.labels === "function" ? options.labels(i) : (options.labels ?? "role=geoip"));
  const agents = await Promise.all(
    addresses.map(async (address, i) =>
      startAgent(t, coordinator, {
        name: `web-${i + 1}`,
        address,
        labels: labelsOf(i),
        token: await coordinator.enrollmentToken({ labels: labelsOf(i), address }),
        switchMode: options.switchMode,
        ...options.agent,
      }),
    ),
  );
  const lbAddresses = Array.from({ length: options.lbHosts ?? 0 }, (_, i) => `${base}.${51 + i}`);
  const lbAgents = await Promise.all(
    lbAddresses.map(async (address, i) =>
      startAgent(t, coordinator, { name: `lb-${i + 1}`, address, labels: "role=lb", token: await coordinator.enrollmentToken({ labels: "role=lb", address }), switchMode: options.switchMode, ...options.agent }),
    ),
  );
  await Promise.all([...agents, ...lbAgents].map((a) => a.online()));
  return { coordinator, agents, addresses, lbAgents, lbAddresses, dir: tempDir(t, "cutover-fleet-") };
}
