import { copyFile, readFile, rename, rm } from "node:fs/promises";
import { writeFileAtomic, fsyncDirOf, fsyncPath } from "../state/atomic-write.js";

/** Beside the agent file: the bytes it replaced, the unconfirmed trial, and why the wrapper rolled one back. */
export const upgradeFiles = (file: string) => ({
  // .mjs: node runs it as ESM (the `--version` check runs it before it replaces anything).
  next: `${file}.new.mjs`,
  previous: `${file}.previous`,
  trial: `${file}.trial`,
  rolledBack: `${file}.rolled-back`,
});

/**
 * The trial marker the wrapper reads: "SECONDS VERSION" on its first line. The wrapper appends
 * "started" when it starts the new file, "exited CODE" or "late SECONDS" when it did not come
 * online; a start that finds "started" already puts the previous file back.
 */
export function trialMarker(trialMs: number, version: string): string {
  return `${Math.max(1, Math.ceil(trialMs / 1000))} ${version}\n`;
}

/**
 * Puts `bytes` in place of the agent file: written and fsynced beside it (AGENT.new), the
 * current file kept as AGENT.previous, the trial marker written, then one rename over AGENT.
 * A crash at any step leaves a file the wrapper can start: the old one (a trial of the old
 * file is confirmed as any), or the new one under trial.
 */
export async function swapAgentFile(options: { file: string; bytes: Uint8Array; trialMs: number; version: string }): Promise<{ previous: string }> {
  const files = upgradeFiles(options.file);
  await writeFileAtomic(files.next, options.bytes, 0o644);
  await copyFile(options.file, files.previous);
  await fsyncPath(files.previous);
  await rm(files.rolledBack, { force: true });
  await writeFileAtomic(files.trial, trialMarker(options.trialMs, options.version), 0o644);
  await rename(files.next, options.file);
  await fsyncDirOf(options.file);
  return { previous: files.previous };
}

/**
 * At the first session after a start: ends a trial (this file came online, so the wrapper
 * keeps it) and returns, once, what the wrapper said when it rolled an upgrade back.
 */
export async function settleTrial(file: string): Promise<{ confirmed: boolean; rolledBack: string | undefined }> {
  const files = upgradeFiles(file);
  const confirmed = await rm(files.trial).then(() => true, () => false);
  const rolledBack = await readFile(files.rolledBack, "utf8").then((text) => text.trim(), () => undefined);
  if (rolledBack !== undefined) await rm(files.rolledBack, { force: true });
  return { confirmed, rolledBack };
}
