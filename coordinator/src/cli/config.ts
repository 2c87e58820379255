import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { EXIT, ExitError } from "./exit-error.js";
import { checkTransport } from "./transport.js";

export interface ClientSettings {
  url: string;
  token: string;
  /** The coordinator's TLS certificate fingerprint to pin (https only). */
  fingerprint?: string;
}

export interface GlobalOptions {
  url?: string;
  token?: string;
  config?: string;
  fingerprint?: string;
  /** Send the token over plain http to a host other than loopback. */
  allowPlain?: boolean;
}

/** Default CLI config file: $CUTOVER_CONFIG, else ~/.config/cutover/cli.yaml (keys: url, token). */
export function defaultConfigPath(): string {
  return process.env.CUTOVER_CONFIG ?? join(homedir(), ".config", "cutover", "cli.yaml");
}

/** Where the CLI finds the coordinator: flags, then CUTOVER_URL/CUTOVER_TOKEN, then the config file; refused when it would leak the token (see checkTransport). */
export function resolveClientSettings(options: GlobalOptions): ClientSettings {
  const path = options.config ?? defaultConfigPath();
  let file: { url?: unknown; token?: unknown; fingerprint?: unknown; allow_plain?: unknown } = {};
  if (existsSync(path)) {
    try {
      file = (parse(readFileSync(path, "utf8")) ?? {}) as typeof file;
    } catch (error) {
      throw new ExitError(`${path}: not valid YAML: ${(error as Error).message}`, EXIT.usage);
    }
  } else if (options.config) {
    throw new ExitError(`config file ${path} does not exist`, EXIT.usage);
  }
  const url = options.url ?? process.env.CUTOVER_URL ?? (typeof file.url === "string" ? file.url : undefined) ?? "http://127.0.0.1:7400";
  const token = options.token ?? process.env.CUTOVER_TOKEN ?? (typeof file.token === "string" ? file.token : undefined);
  if (!token) {
    throw new ExitError(
      "no API token: set CUTOVER_TOKEN, pass --token, or put `token:` in " + path + "\n" +
        "  (the first admin token is in the coordinator's data dir: <data-dir>/admin-token)",
      EXIT.usage,
    );
  }
  const fingerprint = options.fingerprint ?? process.env.CUTOVER_FINGERPRINT ?? (typeof file.fingerprint === "string" ? file.fingerprint : undefined);
  const settings = { url: url.replace(/\/+$/, ""), token: token.trim(), ...(fingerprint && { fingerprint }) };
  checkTransport(settings, options.allowPlain === true || process.env.CUTOVER_ALLOW_PLAIN === "1" || file.allow_plain === true);
  return settings;
}
