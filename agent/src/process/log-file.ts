import { mkdirSync, openSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Color } from "./record.js";

/** Size at which an instance log is rotated when the instance (re)starts. */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
/** Rotated files kept: <color>.log.1 (newest) .. <color>.log.<keep>. */
export const LOG_ROTATE_KEEP = 3;

export interface LogRotation {
  maxBytes: number;
  keep: number;
}

export const DEFAULT_LOG_ROTATION: LogRotation = { maxBytes: LOG_ROTATE_BYTES, keep: LOG_ROTATE_KEEP };

/** `<logDir>/<app>/<color>.log`: stdout and stderr of every instance of that color, interleaved. */
export function instanceLogPath(logDir: string, app: string, color: Color): string {
  return join(logDir, app, `${color}.log`);
}

/**
 * Shifts `path` to `path.1` (and .1 to .2 ...) when it is at least `maxBytes`.
 * Checked only when an instance (re)starts: the running process holds the file
 * open, so renaming it under a live writer would just move its output.
 */
export function rotateIfLarge(path: string, rotation: LogRotation): boolean {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return false;
  }
  if (size < rotation.maxBytes) return false;
  rmSync(`${path}.${rotation.keep}`, { force: true });
  for (let n = rotation.keep - 1; n >= 1; n--) {
    try {
      renameSync(`${path}.${n}`, `${path}.${n + 1}`);
    } catch {
      // That generation does not exist yet.
    }
  }
  if (rotation.keep > 0) renameSync(path, `${path}.1`);
  else rmSync(path, { force: true });
  return true;
}

/** Opens (creating the directory) the log for appending; the caller closes the fd once it is handed to the child. */
export function openInstanceLog(path: string, rotation: LogRotation): number {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  rotateIfLarge(path, rotation);
  return openSync(path, "a", 0o640);
}
