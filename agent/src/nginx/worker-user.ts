import { readFileSync } from "node:fs";
import { NginxError } from "./errors.js";

/**
 * Accounts the managed nginx's workers may run as, in order of preference:
 * the one Debian's nginx uses, the one RHEL's uses, and the one every system
 * has. Never root: a worker runs whatever an app's site config makes it run.
 */
export const WORKER_USER_CANDIDATES = ["www-data", "nginx", "nobody"] as const;

/** An account for nginx's `user` directive, with its primary group's name (nginx takes names, not ids). */
export interface WorkerUser {
  name: string;
  group: string;
  uid: number;
  gid: number;
}

/** The first candidate in passwd(5) text that is not uid 0 and whose primary group group(5) names. */
export function chooseWorkerUser(passwd: string, group: string, candidates: readonly string[] = WORKER_USER_CANDIDATES): WorkerUser | undefined {
  const accounts = new Map(passwd.split("\n").map((line) => line.split(":")).filter((f) => f.length >= 7).map((f) => [f[0]!, f] as const));
  const groups = new Map(group.split("\n").map((line) => line.split(":")).filter((f) => f.length >= 3).map((f) => [Number(f[2]), f[0]!] as const));
  for (const name of candidates) {
    const fields = accounts.get(name);
    const uid = Number(fields?.[2]);
    const gid = Number(fields?.[3]);
    if (!fields || !Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) continue;
    const groupName = groups.get(gid);
    if (groupName) return { name, group: groupName, uid, gid };
  }
  return undefined;
}

/** Reads /etc/passwd and /etc/group; throws ERR_NGINX_START_FAILED naming the fix when no candidate exists. */
export function findWorkerUser(passwdPath = "/etc/passwd", groupPath = "/etc/group"): WorkerUser {
  const found = chooseWorkerUser(readFileSync(passwdPath, "utf8"), readFileSync(groupPath, "utf8"));
  if (found) return found;
  throw new NginxError(
    "ERR_NGINX_START_FAILED",
    `no unprivileged account for nginx's workers: none of ${WORKER_USER_CANDIDATES.join(", ")} is in ${passwdPath} with a group in ${groupPath}; create one (useradd --system --user-group www-data)`,
  );
}
