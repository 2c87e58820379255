import { readFileSync } from "node:fs";
import { ProcessError } from "./errors.js";

export interface UserIds {
  uid: number;
  gid: number;
  home: string;
}

export const PASSWD_PATH = "/etc/passwd";

/** Looks up a local account by name; the agent switches to it when starting an app. */
export type UserLookup = (name: string) => UserIds;

/** Parses passwd(5) text and finds `name`; throws ERR_UNKNOWN_USER when absent. */
export function findUser(passwd: string, name: string, source = PASSWD_PATH): UserIds {
  for (const line of passwd.split("\n")) {
    const fields = line.split(":");
    if (fields[0] !== name || fields.length < 7) continue;
    const uid = Number(fields[2]);
    const gid = Number(fields[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) break;
    return { uid, gid, home: fields[5] ?? "/" };
  }
  throw new ProcessError(
    "ERR_UNKNOWN_USER",
    `run.user ${JSON.stringify(name)} is not an account in ${source} on this host; create it (useradd --system ${name}) or change run.user`,
  );
}

/** Reads /etc/passwd on every call: accounts may be added while the agent runs. */
export const lookupUserInPasswd: UserLookup = (name) => findUser(readFileSync(PASSWD_PATH, "utf8"), name);
