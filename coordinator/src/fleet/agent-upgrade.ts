import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { compareVersions, isValidVersion, UPGRADE_ROLLED_BACK_EVENT, UPGRADES_ITSELF, v1, type cutover } from "@cutover/protocol";
import type { CountOrPercent } from "@cutover/spec";
import type { Logger } from "@cutover/log";
import { CommandError, type Fleet } from "./fleet.js";
import type { HostRecord, HostStore } from "../store/hosts.js";
import { matchesSelector, planBatches } from "../rollout/plan.js";
import type { SignedBundle } from "../installer/agent-bundle.js";

/** How long an agent may take to fetch, check and swap a bundle before it answers. */
export const UPGRADE_COMMAND_TIMEOUT_MS = 120_000;
/** The trial when none is asked for: the new agent has this long to come online. */
export const DEFAULT_UPGRADE_DEADLINE_MS = 60_000;
/** After the trial: how long more the coordinator waits for the host's agent (either file) to come back. */
const COME_BACK_GRACE_MS = 30_000;
/** Once a host is back with the old version: how long to wait for the agent to say why. */
const ROLLBACK_REASON_WAIT_MS = 5_000;
const POLL_MS = 100;

/** One host's part of `cutover agents upgrade`. */
export interface HostUpgrade {
  host: string;
  from: string;
  /** The version it runs at the end. */
  now: string;
  outcome: "upgraded" | "unchanged" | "rolled-back" | "failed" | "not-started";
  message: string;
}

export interface UpgradeReport {
  version: string;
  sha256: string;
  hosts: HostUpgrade[];
  /** Why the upgrade stopped before every host was done; null when it finished. */
  halted: string | null;
}

/** Refused before any host is touched: the message says what to change. */
export class UpgradeRefused extends Error {
  constructor(readonly code: "ERR_UPGRADE_NO_HOSTS" | "ERR_UPGRADE_DOWNGRADE" | "ERR_UPGRADE_UNSUPPORTED" | "ERR_UPGRADE_UNREACHABLE" | "ERR_UPGRADE_BUNDLE", message: string) {
    super(message);
  }
}

export interface UpgradeRequest {
  bundle: SignedBundle;
  /** What the bundle says it is (bundleVersion). */
  version: string;
  selector: Record<string, string>;
  batch: CountOrPercent;
  allowDowngrade: boolean;
  deadlineMs: number;
}

export interface UpgradeDeps {
  fleet: Fleet;
  hosts: HostStore;
  log: Logger;
  /** Progress, one line per step (streamed to the CLI). */
  progress?: (line: HostUpgrade | { host: string; step: string }) => void;
}

export interface UpgradePlan {
  /** Hosts that get the bundle, in batches (by name). */
  batches: HostRecord[][];
  unchanged: HostRecord[];
}

/**
 * Which hosts get the bundle, in which batches, or why none may: a host that runs the version
 * already is left out; one that runs a newer version needs allowDowngrade; one that is
 * unreachable or whose agent cannot upgrade itself (no `agent.upgrade`: older, or not
 * installed by install.sh) refuses the whole upgrade, so a fleet is never left half-done by surprise.
 */
export function planUpgrade(hosts: HostRecord[], options: { version: string; allowDowngrade: boolean; batch: CountOrPercent; reachable: (host: HostRecord) => boolean }): UpgradePlan {
  const todo: HostRecord[] = [];
  const unchanged: HostRecord[] = [];
  const newer: HostRecord[] = [];
  for (const host of [...hosts].sort((a, b) => a.name.localeCompare(b.name))) {
    const order = isValidVersion(host.agentVersion) ? compareVersions(options.version, host.agentVersion) : 1;
    if (order === 0) unchanged.push(host);
    else {
      if (order < 0) newer.push(host);
      todo.push(host);
    }
  }
  if (newer.length > 0 && !options.allowDowngrade) {
    throw new UpgradeRefused("ERR_UPGRADE_DOWNGRADE", `the bundle is ${options.version}, older than what ${newer.map((h) => `${h.name} (${h.agentVersion})`).join(", ")} run: pass --allow-downgrade to install it anyway, or --hosts to leave them out`);
  }
  const unreachable = todo.filter((h) => !options.reachable(h));
  if (unreachable.length > 0) {
    throw new UpgradeRefused("ERR_UPGRADE_UNREACHABLE", `${unreachable.map((h) => h.name).join(", ")} ${unreachable.length === 1 ? "is" : "are"} unreachable: bring ${unreachable.length === 1 ? "it" : "them"} online or leave ${unreachable.length === 1 ? "it" : "them"} out with --hosts; nothing was changed`);
  }
  const unable = todo.filter((h) => !h.capabilities.includes(UPGRADES_ITSELF));
  if (unable.length > 0) {
    throw new UpgradeRefused("ERR_UPGRADE_UNSUPPORTED", `the agent of ${unable.map((h) => `${h.name} (${h.agentVersion || "?"})`).join(", ")} cannot upgrade itself (older than this feature, or not run by install.sh's wrapper): upgrade ${unable.length === 1 ? "it" : "them"} by running install.sh again; nothing was changed`);
  }
  return { batches: planBatches(todo, options.batch), unchanged };
}

/** The AGENT_VERSION a bundle prints with `--version`, run with this Node.js in an empty directory. */
export async function bundleVersion(bytes: Uint8Array): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cutover-bundle-"));
  try {
    const file = join(dir, "cutover-agent.mjs");
    await writeFile(file, bytes);
    const { stdout } = await promisify(execFile)(process.execPath, [file, "--version"], { cwd: dir, timeout: 20_000 });
    const version = stdout.trim();
    if (!isValidVersion(version)) throw new Error(`it prints ${JSON.stringify(version)}, not a version`);
    return version;
  } catch (error) {
    throw new UpgradeRefused("ERR_UPGRADE_BUNDLE", `the bundle does not run as an agent (\`--version\`: ${(error as Error).message.split("\n")[0]}): is it made by scripts/bundle-agent.mjs?`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Upgrades the selected hosts' agents batch by batch: each host is sent UpgradeAgent, and the
 * next batch starts only when every host of this one is back online running the new version.
 * A host that fails, or comes back with its previous file (its wrapper rolled the new one
 * back), halts the upgrade with the reason; the hosts after it are not started.
 */
export async function runAgentUpgrade(deps: UpgradeDeps, request: UpgradeRequest): Promise<UpgradeReport> {
  const { fleet, hosts } = deps;
  const selected = hosts.list().filter((h) => matchesSelector(h.labels, request.selector));
  if (selected.length === 0) throw new UpgradeRefused("ERR_UPGRADE_NO_HOSTS", `no enrolled host matches ${Object.entries(request.selector).map(([k, v]) => `${k}=${v}`).join(",") || "(all)"}`);
  const plan = planUpgrade(selected, { version: request.version, allowDowngrade: request.allowDowngrade, batch: request.batch, reachable: (h) => fleet.reachable(h.id) });
  const report: UpgradeReport = { version: request.version, sha256: request.bundle.sha256, hosts: [], halted: null };
  for (const host of plan.unchanged) report.hosts.push({ host: host.name, from: host.agentVersion, now: host.agentVersion, outcome: "unchanged", message: `runs ${request.version} already` });
  const reasons = new Map<string, string>();
  const unsubscribe = fleet.subscribeHostEvents((host, event) => {
    if (event.kind === UPGRADE_ROLLED_BACK_EVENT) reasons.set(host, event.message);
  });
  const withdraw = fleet.offerBundle(request.bundle.sha256, request.bundle.bytes, plan.batches.flat().map((h) => h.name));
  try {
    for (const [index, batch] of plan.batches.entries()) {
      if (report.halted) {
        for (const host of batch) report.hosts.push({ host: host.name, from: host.agentVersion, now: host.agentVersion, outcome: "not-started", message: "the upgrade halted before this host" });
        continue;
      }
      const results = await Promise.all(batch.map((host) => upgradeHost(deps, request, host, reasons)));
      report.hosts.push(...results);
      const failed = results.filter((r) => r.outcome !== "upgraded");
      if (failed.length > 0) report.halted = `halted after batch ${index + 1} of ${plan.batches.length}: ${failed.map((r) => `${r.host}: ${r.message}`).join("; ")}`;
    }
  } finally {
    withdraw();
    unsubscribe();
  }
  deps.log[report.halted ? "warn" : "info"]("agent upgrade finished", { version: request.version, hosts: report.hosts.length, halted: report.halted ?? "" });
  return report;
}

async function upgradeHost(deps: UpgradeDeps, request: UpgradeRequest, host: HostRecord, reasons: Map<string, string>): Promise<HostUpgrade> {
  const { fleet, hosts } = deps;
  const done = (outcome: HostUpgrade["outcome"], message: string): HostUpgrade => {
    const result = { host: host.name, from: host.agentVersion, now: hosts.byId(host.id)?.agentVersion ?? host.agentVersion, outcome, message };
    deps.progress?.(result);
    return result;
  };
  deps.progress?.({ host: host.name, step: `sending ${request.version} (${host.agentVersion} now)` });
  const before = fleet.sessionOf(host.id);
  reasons.delete(host.name);
  let result: cutover.v1.CommandResult;
  try {
    result = await fleet.sendCommand(
      host,
      { upgradeAgent: { bundleSha256: request.bundle.sha256, sizeBytes: request.bundle.bytes.length, signature: request.bundle.signature, version: request.version, allowDowngrade: request.allowDowngrade, trialMs: request.deadlineMs } },
      UPGRADE_COMMAND_TIMEOUT_MS,
    );
  } catch (error) {
    return done("failed", `${error instanceof CommandError ? error.code : "ERR_INTERNAL"}: ${(error as Error).message}`);
  }
  if (result.status !== v1.CommandResult.Status.OK) return done("failed", `${result.errorCode}: ${result.message}`);
  deps.progress?.({ host: host.name, step: "restarting into the new file" });
  const until = Date.now() + request.deadlineMs + COME_BACK_GRACE_MS;
  while (!(fleet.sessionOf(host.id) && fleet.sessionOf(host.id) !== before)) {
    if (Date.now() >= until) return done("failed", `did not come back online within ${Math.round((request.deadlineMs + COME_BACK_GRACE_MS) / 1000)} s (see its agent log)`);
    await sleep(POLL_MS);
  }
  const now = hosts.byId(host.id)?.agentVersion ?? "";
  if (now === request.version) return done("upgraded", `runs ${now}`);
  const reasonUntil = Date.now() + ROLLBACK_REASON_WAIT_MS;
  while (!reasons.has(host.name) && Date.now() < reasonUntil) await sleep(POLL_MS);
  return done("rolled-back", `came back running ${now}, not ${request.version}: ${reasons.get(host.name) ?? "its agent did not say why (see its agent log)"}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
