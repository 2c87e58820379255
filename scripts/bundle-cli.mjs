// `node scripts/bundle-cli.mjs [--no-build] [--outfile FILE]`: the `cutover` CLI (and its
// server) as one JavaScript file, dist/cutover.mjs, that runs with the system `node`
// (>= 20) and no node_modules: `node cutover.mjs deploy …` from a laptop or a CI job
// with nothing installed but Node.
//
// Only `cutover server` needs more: the SQLite addon (better-sqlite3, native code that
// cannot be inlined), which it loads when it opens the store and asks for by name when it
// is missing (coordinator/src/store/database.ts). Like bundle-agent.mjs it builds first
// unless --no-build, and ends by running the file alone in an empty directory.
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { bundleOneFile, bundleScriptMain, versionFrom } from "./one-file.mjs";
import { root } from "./setup.mjs";

export const DEFAULT_CLI_OUTFILE = join(root, "dist", "cutover.mjs");
const CLI_MAIN = join(root, "coordinator", "dist", "cli", "main.js");

/**
 * Left as runtime loads: the SQLite addon (only `cutover server` loads it), and ws's
 * optional native speed-ups (see bundle-agent.mjs).
 */
const EXTERNAL = ["better-sqlite3", "bufferutil", "utf-8-validate"];

const MARK = "// cutover: one-file build of the cutover CLI and server (scripts/bundle-cli.mjs); `cutover server` needs better-sqlite3 beside it.";

/** The same entry as coordinator/bin/cutover.js, resolved from the repo root. */
const ENTRY = `import { main } from "./coordinator/dist/cli/main.js";\nawait main(process.argv);\n`;

/** Bundles the CLI to `outfile`; returns its size and sha256. */
export async function bundleCli({ outfile = DEFAULT_CLI_OUTFILE } = {}) {
  if (!existsSync(CLI_MAIN)) throw new Error(`${relative(root, CLI_MAIN)} is missing: run \`npm run build\` first (or this script without --no-build)`);
  return bundleOneFile({ what: "the CLI bundle", entry: ENTRY, outfile, external: EXTERNAL, mark: MARK });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bundleScriptMain({
    script: "bundle-cli.mjs",
    defaultOutfile: DEFAULT_CLI_OUTFILE,
    bundle: bundleCli,
    version: () => versionFrom(join(root, "coordinator", "dist", "version.js"), "VERSION"),
  });
}
