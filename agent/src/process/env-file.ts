import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { ProcessError } from "./errors.js";

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** An env file is a handful of settings; anything this big is not one. */
const MAX_ENV_FILE_BYTES = 1024 * 1024;
const WORLD_WRITABLE = 0o002;

/**
 * Reads run.env_file: an absolute path to a regular file that no other user
 * can write (it becomes the app's environment, and the agent is root), opened
 * once and checked on that descriptor so the file checked is the file read.
 * Errors name the file and the line, never a value.
 */
export async function readEnvFile(path: string): Promise<Record<string, string>> {
  const refuse = (why: string) => new ProcessError("ERR_ENV_FILE", `run.env_file ${path} ${why}`);
  if (!isAbsolute(path)) throw refuse("is not an absolute path");
  let file;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw refuse("does not exist on this host: create it (KEY=VALUE lines, not world-writable) or take env_file out of the spec");
    throw refuse(`cannot be opened (${code ?? (error as Error).message})`);
  }
  try {
    const stat = await file.stat();
    if (!stat.isFile()) throw refuse("is not a regular file");
    if (stat.mode & WORLD_WRITABLE) throw refuse(`is world-writable (mode ${(stat.mode & 0o7777).toString(8).padStart(4, "0")}): anyone on the host could set the app's environment; chmod o-w it`);
    if (stat.size > MAX_ENV_FILE_BYTES) throw refuse(`is ${stat.size} bytes; an env file holds at most ${MAX_ENV_FILE_BYTES}`);
    return parseEnvFile(await file.readFile("utf8"), path);
  } finally {
    await file.close();
  }
}

/**
 * KEY=VALUE lines; blank lines and lines starting with `#` are skipped, an
 * `export ` prefix is allowed, and a value wholly inside one pair of single or
 * double quotes loses them. Nothing else is interpreted: no escapes, no `$`.
 */
export function parseEnvFile(text: string, path: string): Record<string, string> {
  const entries: [string, string][] = [];
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.replace(/\r$/, "");
    const trimmed = line.trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const where = `run.env_file ${path} line ${index + 1}`;
    const assignment = trimmed.replace(/^export\s+/, "");
    const equals = assignment.indexOf("=");
    if (equals <= 0) throw new ProcessError("ERR_ENV_FILE", `${where} is not KEY=VALUE`);
    const name = assignment.slice(0, equals).trim();
    if (!ENV_NAME.test(name)) throw new ProcessError("ERR_ENV_FILE", `${where} names a variable that is not one: letters, digits and _, not starting with a digit`);
    let value = assignment.slice(equals + 1);
    if (value.includes("\0")) throw new ProcessError("ERR_ENV_FILE", `${where}: the value of ${name} holds a NUL byte`);
    const quoted = /^(["'])(.*)\1$/s.exec(value);
    if (quoted) value = quoted[2]!;
    entries.push([name, value]);
  }
  return Object.fromEntries(entries);
}
