import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { fsyncDirOf, fsyncPath, writeFileAtomic } from "../state/atomic-write.js";
import type { NginxRunner } from "./runner.js";
import type { SiteProtocol } from "./site.js";

// The file operations of a site change (change.ts). Every change is either complete or
// absent after a crash: content goes through writeFileAtomic, moves are renames in one
// directory. The exceptions are scratch files no nginx loads at start: the candidate until
// it is promoted (synced first, see syncCandidate) and the pending copy (see pendingPath).

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

/**
 * Writes the candidate into the page cache, where `nginx -t` reads it: synchronously (a few
 * kilobytes take microseconds) and without fsync, which syncCandidate does while the test runs.
 */
export function writeCandidate(livePath: string, content: string): string {
  const path = candidatePath(livePath);
  writeFileSync(path, content, { mode: SITE_FILE_MODE });
  return path;
}

/** Makes the candidate's content durable; awaited before it is promoted. */
export function syncCandidate(livePath: string): Promise<void> {
  return fsyncPath(candidatePath(livePath));
}

/**
 * Puts the tested candidate in place: the bytes nginx -t accepted are the bytes that go live.
 * The rename is done when this returns (nginx may load the file from then on); the promise
 * settles once the rename is durable.
 */
export function promoteCandidate(livePath: string): Promise<void> {
  renameSync(candidatePath(livePath), livePath);
  return fsyncDirOf(livePath);
}

/** Removes a live file now (nginx no longer sees it from here on); settles once that is durable. */
export function removeNow(path: string): Promise<void> {
  rmSync(path, { force: true });
  return fsyncDirOf(path);
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
