import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isValidName, isValidRelease, NAME_RULE, RELEASE_RULE } from "@cutover/protocol";
import { writeFileAtomic } from "../state/atomic-write.js";
import { ProcessError } from "./errors.js";

export type Color = "blue" | "green";
export const COLORS: readonly Color[] = ["blue", "green"];

/** Which instance a process is: the app, its color and port, and the release it runs. */
export interface InstanceIdentity {
  app: string;
  color: Color;
  release: string;
  port: number;
  /** The agent's address; the instance listens on it. */
  address: string;
}

/**
 * What the agent saves about a running instance, so that after a restart it
 * can find the process again and be sure it is the same one: a pid alone may
 * have been reused, a pid with its start time and argv cannot.
 */
export interface InstanceRecord extends InstanceIdentity {
  pid: number;
  /** /proc/<pid>/stat field 22 (clock ticks after boot). */
  startTime: number;
  /** argv as /proc/<pid>/cmdline showed it right after the start. */
  cmdline: string[];
  /** The instance's log file (stdout and stderr). */
  logPath: string;
  /** Wall clock at start, Unix ms. */
  startedAtMs: number;
}

/** Bumped when a field changes meaning; a record of another format is not adopted. */
const RECORD_FORMAT = 1;
const INSTANCES_DIR = "instances";

/** Throws ERR_INVALID_NAME unless app, color and release are safe in paths. */
export function checkIdentity(identity: Pick<InstanceIdentity, "app" | "color" | "release">): void {
  if (!isValidName(identity.app)) throw new ProcessError("ERR_INVALID_NAME", `app name ${JSON.stringify(identity.app)} is not valid: ${NAME_RULE}`);
  if (!COLORS.includes(identity.color)) throw new ProcessError("ERR_INVALID_NAME", `color ${JSON.stringify(identity.color)} is not blue or green`);
  if (!isValidRelease(identity.release)) throw new ProcessError("ERR_INVALID_NAME", `release ${JSON.stringify(identity.release)} is not valid: ${RELEASE_RULE}`);
}

/** `<stateDir>/instances/<app>/<color>.json` */
export function instanceRecordPath(stateDir: string, app: string, color: Color): string {
  checkIdentity({ app, color, release: "x" });
  return join(stateDir, INSTANCES_DIR, app, `${color}.json`);
}

export async function writeInstanceRecord(stateDir: string, record: InstanceRecord): Promise<string> {
  const path = instanceRecordPath(stateDir, record.app, record.color);
  mkdirSync(join(stateDir, INSTANCES_DIR, record.app), { recursive: true, mode: 0o755 });
  await writeFileAtomic(path, `${JSON.stringify({ format: RECORD_FORMAT, ...record }, null, 2)}\n`, 0o644);
  return path;
}

/** Reads and checks one record; ERR_INVALID_RECORD when it does not parse or lacks a field. */
export function readInstanceRecord(path: string): InstanceRecord {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ProcessError("ERR_INVALID_RECORD", `cannot read instance record ${path}: ${(error as Error).message}`, { cause: error });
  }
  const r = raw as Record<string, unknown>;
  const bad = (what: string) => new ProcessError("ERR_INVALID_RECORD", `instance record ${path} ${what}; delete it if no such instance runs`);
  if (typeof r !== "object" || r === null) throw bad("is not a JSON object");
  if (r.format !== RECORD_FORMAT) throw bad(`has format ${JSON.stringify(r.format)}, expected ${RECORD_FORMAT}`);
  for (const field of ["pid", "startTime", "port", "startedAtMs"] as const) {
    if (!Number.isSafeInteger(r[field])) throw bad(`has no integer ${field}`);
  }
  for (const field of ["app", "color", "release", "address", "logPath"] as const) {
    if (typeof r[field] !== "string") throw bad(`has no string ${field}`);
  }
  if (!Array.isArray(r.cmdline) || !r.cmdline.every((arg) => typeof arg === "string")) throw bad("has no cmdline array");
  const record: InstanceRecord = {
    pid: r.pid as number,
    startTime: r.startTime as number,
    cmdline: r.cmdline as string[],
    app: r.app as string,
    color: r.color as Color,
    release: r.release as string,
    port: r.port as number,
    address: r.address as string,
    logPath: r.logPath as string,
    startedAtMs: r.startedAtMs as number,
  };
  try {
    checkIdentity(record);
  } catch (error) {
    throw bad(`names an invalid instance: ${(error as Error).message}`);
  }
  return record;
}

export interface RecordListing {
  records: InstanceRecord[];
  /** Files under instances/ that are not valid records; the caller logs them. */
  invalid: { path: string; error: ProcessError }[];
}

/** Every saved record under `<stateDir>/instances/`, for adoption at agent start. */
export function listInstanceRecords(stateDir: string): RecordListing {
  const listing: RecordListing = { records: [], invalid: [] };
  const root = join(stateDir, INSTANCES_DIR);
  for (const app of readdirOrEmpty(root)) {
    for (const file of readdirOrEmpty(join(root, app))) {
      if (!file.endsWith(".json")) continue;
      const path = join(root, app, file);
      try {
        listing.records.push(readInstanceRecord(path));
      } catch (error) {
        listing.invalid.push({ path, error: error as ProcessError });
      }
    }
  }
  return listing;
}

/**
 * Deletes the record of `app`/`color` if it still describes `pid`: the exit of
 * an old process must not delete the record of the one that replaced it.
 */
export function removeInstanceRecord(stateDir: string, record: Pick<InstanceRecord, "app" | "color" | "pid">): void {
  const path = instanceRecordPath(stateDir, record.app, record.color);
  try {
    if (readInstanceRecord(path).pid !== record.pid) return;
  } catch {
    // Missing or unreadable: nothing of ours to keep.
  }
  rmSync(path, { force: true });
}

function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
