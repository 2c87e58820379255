import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "../state/atomic-write.js";

// The file operations of a switch. Every change is either complete or absent after a
// crash: content goes through writeFileAtomic, moves are renames in one directory.

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

function fsyncDir(path: string): void {
  const fd = openSync(dirname(path), "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeCandidate(livePath: string, content: string): string {
  const path = candidatePath(livePath);
  writeFileAtomic(path, content, SITE_FILE_MODE);
  return path;
}

/** Puts the tested candidate in place: the bytes nginx -t accepted are the bytes that go live. */
export function promoteCandidate(livePath: string): void {
  renameSync(candidatePath(livePath), livePath);
  fsyncDir(livePath);
}

export function removeDurable(path: string): void {
  rmSync(path, { force: true });
  fsyncDir(path);
}

export function discardCandidate(livePath: string): void {
  rmSync(candidatePath(livePath), { force: true });
}

/** Writes `content`, or removes the file when null: how a rollback restores what was there. */
export function restoreFile(path: string, content: string | null): void {
  if (content === null) removeDurable(path);
  else writeFileAtomic(path, content, SITE_FILE_MODE);
}

/**
 * writeFileAtomic's guarantees (temp file, fsync, rename, fsync dir) without blocking the
 * event loop: a live switch runs the fsyncs in libuv's pool while its confirmation
 * request is on the wire, instead of stalling ~1-3 ms on ext4 before sending it.
 */
export async function writeFileAtomicAsync(path: string, content: string, mode = SITE_FILE_MODE): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  const file = await open(temp, "w", mode);
  try {
    await file.writeFile(content);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
