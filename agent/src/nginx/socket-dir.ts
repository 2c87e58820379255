import { lstatSync, mkdirSync } from "node:fs";
import { NginxError } from "./errors.js";

/**
 * The directory of the live-mode control socket decides who can switch traffic:
 * whoever may create or replace the socket in it can make nginx listen where they
 * like or answer the agent's PUTs themselves. So it must be a real directory (not
 * a symlink to one), the agent's own, and writable by nobody else. A missing one
 * is made (0700): after a reboot /run is empty unless tmpfiles.d made it.
 */
export function ensureSocketDir(dir: string, uid: number = process.geteuid?.() ?? 0): void {
  let stat = lstatSync(dir, { throwIfNoEntry: false });
  if (!stat) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      throw unsafe(dir, `it cannot be created: ${(error as Error).message}`);
    }
    stat = lstatSync(dir);
  }
  if (stat.isSymbolicLink()) throw unsafe(dir, "it is a symlink; make it a directory of its own");
  if (!stat.isDirectory()) throw unsafe(dir, "it is not a directory");
  if (stat.uid !== uid) throw unsafe(dir, `it is owned by uid ${stat.uid}, not the agent's uid ${uid}; chown ${uid} ${dir}`);
  if ((stat.mode & 0o022) !== 0) {
    throw unsafe(dir, `its mode is ${(stat.mode & 0o7777).toString(8).padStart(4, "0")}, writable by group or others; chmod go-w ${dir}`);
  }
}

function unsafe(dir: string, why: string): NginxError {
  return new NginxError("ERR_NGINX_SOCKET_DIR_UNSAFE", `the control socket's directory ${dir} is not safe: ${why}. The agent does not start until it is`);
}
