import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Writes a file so that a crash leaves either the old or the new content, never
 * a mix: write a temp file beside it, fsync, rename over, fsync the directory.
 * The fsyncs run in libuv's pool, never on the event loop: on a busy disk one
 * can take seconds, and the agent's session (heartbeats, pongs) must not wait for it.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  const file = await open(temp, "w", mode);
  try {
    await file.writeFile(data);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temp, path);
  await fsyncDirOf(path);
}

/** Makes what was written to `path` (a file, or a directory's entries) durable. */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes a rename or removal in `path`'s directory durable. */
export function fsyncDirOf(path: string): Promise<void> {
  return fsyncPath(dirname(path));
}
