import type { Command } from "commander";
import { existsSync, writeFileSync } from "node:fs";
import { basename, resolve } from "node:path";
import { isValidName, NAME_RULE } from "@cutover/protocol";
import { starterSpec } from "@cutover/spec";
import { EXIT, ExitError } from "../exit-error.js";

export const DEFAULT_SPEC_FILE = "cutover.yml";

/** The app's name: --app, else this directory's name when it is a valid one. */
function appName(given: string | undefined): string {
  if (given !== undefined) {
    if (!isValidName(given)) throw new ExitError(`--app must be ${NAME_RULE}, got "${given}"`, EXIT.usage);
    return given;
  }
  const fromDir = basename(process.cwd()).toLowerCase();
  if (!isValidName(fromDir)) throw new ExitError(`this directory's name "${fromDir}" is not an app name (${NAME_RULE}): pass --app NAME`, EXIT.usage);
  return fromDir;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description(`write a commented starter app spec (default ${DEFAULT_SPEC_FILE}) for a blue/green app; never overwrites without --force`)
    .argument("[file]", "where to write it", DEFAULT_SPEC_FILE)
    .option("--app <name>", "the app's name (default: this directory's name)")
    .option("--force", "overwrite the file if it exists")
    .action((file: string, options: { app?: string; force?: boolean }) => {
      const app = appName(options.app);
      if (existsSync(file) && !options.force) throw new ExitError(`${file} exists; nothing was written (--force overwrites it)`, EXIT.usage);
      writeFileSync(file, starterSpec(app), { mode: 0o644, flag: options.force ? "w" : "wx" });
      process.stdout.write(
        `wrote ${resolve(file)} for app ${app}: set artifact, run.command, ports, proxy.listen and hosts, ` +
          `then \`cutover validate ${file}\` and \`cutover deploy ${file} --release v1\`\n`,
      );
    });
}
