import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { rm, writeFile } from "node:fs/promises";
import { promisify } from "node:util";
import { compareVersions, isValidVersion, MAX_ARTIFACT_CHUNK, v1, type cutover } from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import type { OperationResult } from "../commands/dispatcher.js";
import type { ChunkSource } from "../releases/release-store.js";
import { selfFile } from "./self-file.js";
import { swapAgentFile, upgradeFiles } from "./trial.js";

const Status = v1.CommandResult.Status;
/** The largest bundle taken (install.sh's MAX_BUNDLE_BYTES). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;
/** How long the new file's `--version` may take. */
const VERSION_CHECK_TIMEOUT_MS = 20_000;
/** The trial when the command names none: the new file has this long to come online. */
export const DEFAULT_TRIAL_MS = 60_000;
/** Between the OK answer and the exit: time for the answer to leave the socket. */
const EXIT_AFTER_ANSWER_MS = 300;

export interface UpgradeDeps {
  version: string;
  fetchChunk: ChunkSource;
  verifiesBundle(sha256: string, signature: string): boolean;
  /** Called once the new file is in place and the answer is sent: the agent exits for its wrapper to start it again. */
  restart(): void;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  argv1?: string;
  /** Runs `node FILE --version` (injected by tests). */
  versionOf?: (file: string) => Promise<string>;
}

class UpgradeRefused extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

/**
 * UpgradeAgent: fetch the bundle over the session, check its sha256, the coordinator's
 * signature, and the version it runs as, then swap the agent file (trial.ts) and restart.
 * Every refusal leaves the installed file as it was.
 */
export function upgradeHandler(deps: UpgradeDeps) {
  return async (command: cutover.v1.Command): Promise<OperationResult> => {
    const upgrade = command.upgradeAgent ?? {};
    try {
      const outcome = await upgradeOnce(deps, upgrade);
      setTimeout(deps.restart, EXIT_AFTER_ANSWER_MS).unref();
      return { status: Status.OK, message: `upgrading ${outcome.fromVersion} -> ${outcome.toVersion}; restarting`, agentUpgrading: outcome };
    } catch (error) {
      if (error instanceof UpgradeRefused) return { status: Status.REJECTED, errorCode: error.code, message: error.message };
      throw error;
    }
  };
}

async function upgradeOnce(deps: UpgradeDeps, upgrade: cutover.v1.IUpgradeAgent): Promise<cutover.v1.IAgentUpgrading> {
  const sha256 = upgrade.bundleSha256 ?? "";
  const target = upgrade.version ?? "";
  const size = Number(upgrade.sizeBytes ?? 0);
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new UpgradeRefused("ERR_UPGRADE_BAD_REQUEST", "UpgradeAgent names no sha256");
  if (!isValidVersion(target)) throw new UpgradeRefused("ERR_UPGRADE_BAD_REQUEST", `UpgradeAgent names no valid version (${JSON.stringify(target)})`);
  if (size <= 0 || size > MAX_BUNDLE_BYTES) throw new UpgradeRefused("ERR_UPGRADE_BAD_REQUEST", `a bundle of ${size} bytes is not taken (at most ${MAX_BUNDLE_BYTES})`);
  const self = selfFile(deps.env ?? process.env, deps.argv1 ?? process.argv[1]);
  if (!self.ok) throw new UpgradeRefused("ERR_UPGRADE_NOT_INSTALLED", self.reason);
  if (!upgrade.allowDowngrade && compareVersions(target, deps.version) < 0) {
    throw new UpgradeRefused("ERR_UPGRADE_DOWNGRADE", `the bundle is ${target}, older than the running ${deps.version}: pass --allow-downgrade to install it anyway`);
  }
  if (!deps.verifiesBundle(sha256, upgrade.signature ?? "")) {
    throw new UpgradeRefused("ERR_UPGRADE_BAD_SIGNATURE", "the bundle's signature does not verify with the pinned coordinator key; nothing was changed");
  }
  const bytes = await fetchBundle(deps.fetchChunk, sha256, size);
  const actual = createHash("sha256").update(bytes).digest("hex");
  if (actual !== sha256) throw new UpgradeRefused("ERR_UPGRADE_HASH_MISMATCH", `the bundle fetched hashes to ${actual}, not ${sha256}; nothing was changed`);
  // The version it will run as, from the file itself, before it replaces anything.
  const files = upgradeFiles(self.file);
  await writeFile(files.next, bytes, { mode: 0o644 });
  let runs: string;
  try {
    runs = await (deps.versionOf ?? nodeVersionOf)(files.next);
  } catch (error) {
    await rm(files.next, { force: true });
    const said = String((error as { stderr?: string }).stderr ?? "").trim().split("\n").find((line) => line.trim()) ?? (error as Error).message.split("\n")[0];
    throw new UpgradeRefused("ERR_UPGRADE_BUNDLE_BROKEN", `the bundle does not run (\`--version\`: ${said}); nothing was changed`);
  }
  if (runs !== target) {
    await rm(files.next, { force: true });
    throw new UpgradeRefused("ERR_UPGRADE_VERSION_MISMATCH", `the bundle says it is ${runs}, not ${target}; nothing was changed`);
  }
  const { previous } = await swapAgentFile({ file: self.file, bytes, trialMs: upgrade.trialMs || DEFAULT_TRIAL_MS, version: target });
  deps.log.warn("agent file replaced; restarting into it", { from: deps.version, to: target, file: self.file, previous, sha256: sha256.slice(0, 12) });
  return { fromVersion: deps.version, toVersion: target, agentFile: self.file, previousFile: previous };
}

async function fetchBundle(fetchChunk: ChunkSource, sha256: string, size: number): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  let offset = 0;
  while (offset < size) {
    const chunk = await fetchChunk(sha256, offset, MAX_ARTIFACT_CHUNK);
    if (chunk.error) throw new UpgradeRefused("ERR_UPGRADE_FETCH", `cannot fetch the bundle: ${chunk.error}`);
    if (chunk.totalSize !== size) throw new UpgradeRefused("ERR_UPGRADE_FETCH", `the coordinator serves ${chunk.totalSize} bytes, not the ${size} the command names`);
    if (chunk.data.length === 0) throw new UpgradeRefused("ERR_UPGRADE_FETCH", "the coordinator sent an empty chunk");
    parts.push(chunk.data);
    offset += chunk.data.length;
  }
  return Buffer.concat(parts);
}

async function nodeVersionOf(file: string): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [file, "--version"], { timeout: VERSION_CHECK_TIMEOUT_MS, cwd: "/" });
  return stdout.trim();
}
