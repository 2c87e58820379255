import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { SecretView } from "../../api/secrets.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";

/** The rule the coordinator applies too: a secret is named as the environment variable a spec may give it as. */
const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const secretsPath = (app: string) => `/v1/apps/${encodeURIComponent(app)}/secrets`;
const secretPath = (app: string, name: string) => `${secretsPath(app)}/${encodeURIComponent(name)}`;

export function renderSecrets(app: string, secrets: SecretView[]): string {
  if (secrets.length === 0) return printable(`${app} has no secrets (\`cutover secret set ${app} NAME\` sets one)`);
  return renderTable(
    ["NAME", "SET AT", "SET BY"],
    secrets.map((s) => [s.name, s.setAt, s.setBy]),
  );
}

/**
 * The value as given: one trailing newline (what `echo` and most editors add)
 * is dropped, nothing else. Refused, without repeating any of it, when empty or
 * holding a NUL byte (no environment variable can carry one).
 */
export function secretValueOf(raw: Buffer, from: string): string {
  const text = raw.toString("utf8").replace(/\r?\n$/, "");
  if (text === "") throw new ExitError(`the value from ${from} is empty; nothing was set (\`cutover secret rm\` removes a secret)`, EXIT.usage);
  if (text.includes("\0")) throw new ExitError(`the value from ${from} holds a NUL byte, which no environment variable can carry; nothing was set`, EXIT.usage);
  if (!Buffer.from(text, "utf8").equals(raw.subarray(0, Buffer.byteLength(text, "utf8")))) {
    throw new ExitError(`the value from ${from} is not UTF-8 text; nothing was set (environment values are text: base64-encode binary data)`, EXIT.usage);
  }
  return text;
}

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) process.stderr.write("reading the value from stdin; end it with Ctrl-D (it is not echoed to the coordinator's logs or audit)\n");
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function checkName(name: string): void {
  if (!SECRET_NAME.test(name)) {
    throw new ExitError(`${JSON.stringify(name)} is not a secret name: letters, digits and '_', not starting with a digit (an environment variable name); nothing was set`, EXIT.usage);
  }
}

export function registerSecret(program: Command): void {
  const secret = program.command("secret").description("an app's secrets: stored encrypted on the coordinator, referenced from the spec as run.env: { NAME: { secret: NAME } }");
  const clientOf = (command: Command) => new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
  secret
    .command("set <app> <name>")
    .description("set (or replace) APP's secret NAME from stdin, or from --file; one trailing newline is dropped (deploy token)")
    .option("--file <file>", "read the value from this file instead of stdin")
    .option("--json", "print what was set (name and when, never the value) as JSON")
    .action(async (app: string, name: string, options: { file?: string; json?: boolean }, command: Command) => {
      checkName(name);
      let raw: Buffer;
      try {
        raw = options.file === undefined ? await readStdin() : await readFile(options.file);
      } catch (error) {
        throw new ExitError(`cannot read ${options.file}: ${(error as Error).message}; nothing was set`, EXIT.usage);
      }
      const value = secretValueOf(raw, options.file ?? "stdin");
      const set = await clientOf(command).put<SecretView>(secretPath(app, name), { value });
      process.stdout.write(options.json ? `${JSON.stringify(set)}\n` : `${printable(`${set.app}: secret ${set.name} set by ${set.setBy} at ${set.setAt}; deploy to deliver it`)}\n`);
    });
  secret
    .command("list <app>")
    .description("APP's secrets: names, when and by whom they were set; never values (read token)")
    .option("--json", "print a JSON array of {app, name, setAt, setBy}")
    .action(async (app: string, options: { json?: boolean }, command: Command) => {
      const secrets = await clientOf(command).get<SecretView[]>(secretsPath(app));
      process.stdout.write(options.json ? `${JSON.stringify(secrets)}\n` : `${renderSecrets(app, secrets)}\n`);
    });
  secret
    .command("rm <app> <name>")
    .description("remove APP's secret NAME; a spec that references it is then refused (deploy token); hosts keep what they run")
    .option("--json", "print what was removed (name and when it was set) as JSON")
    .action(async (app: string, name: string, options: { json?: boolean }, command: Command) => {
      checkName(name);
      const removed = await clientOf(command).delete<SecretView>(secretPath(app, name));
      process.stdout.write(options.json ? `${JSON.stringify(removed)}\n` : `${printable(`${removed.app}: secret ${removed.name} removed`)}\n`);
    });
}
