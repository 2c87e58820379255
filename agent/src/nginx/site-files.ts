import { readFileSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { fsyncDirOf, writeFileAtomic } from "../state/atomic-write.js";
import type { NginxRunner } from "./runner.js";
import type { SiteProtocol } from "./site.js";

// The file operations of a site change (change.ts). Every change is either complete or
// absent after a crash: content goes through writeFileAtomic, moves are renames in one
// directory. The one exception is the pending copy, see pendingPath.

export const SITE_FILE_MODE = 0o644;

export function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

/** Beside the live file, under a name the `*.conf` include glob does not match. */
export function candidatePath(livePath: string): string {
  return `${livePath}.candidate`;
}

/**
 * Beside the live file, not matched by the include glob: a live switch's new fallback file,
 * written (without fsync) before the dict is set and removed once the file itself is
 * durable. Only a running agent's process may die between the two, never the page cache it
 * wrote to: after an OS crash nginx's dict is empty too and the copy is never used.
 */
export function pendingPath(livePath: string): string {
  return `${livePath}.pending`;
}

export async function writeCandidate(livePath: string, content: string): Promise<string> {
  const path = candidatePath(livePath);
  await writeFileAtomic(path, content, SITE_FILE_MODE);
  return path;
}

/** Puts the tested candidate in place: the bytes nginx -t accepted are the bytes that go live. */
export async function promoteCandidate(livePath: string): Promise<void> {
  await rename(candidatePath(livePath), livePath);
  await fsyncDirOf(livePath);
}

export async function removeDurable(path: string): Promise<void> {
  await rm(path, { force: true });
  await fsyncDirOf(path);
}

export async function discardCandidate(livePath: string): Promise<void> {
  await rm(candidatePath(livePath), { force: true });
}

/** Writes `content`, or removes the file when null: how a rollback restores what was there. */
export async function restoreFile(path: string, content: string | null): Promise<void> {
  if (content === null) await removeDurable(path);
  else await writeFileAtomic(path, content, SITE_FILE_MODE);
}

/** The file of `app` for `protocol`, or null when this runner cannot have one (no stream dir). */
export function sitePathOrNull(runner: NginxRunner, app: string, protocol: SiteProtocol): string | null {
  try {
    return runner.sitePath(app, protocol);
  } catch {
    return null;
  }
}
