// `node scripts/bundle-agent.mjs [--no-build] [--outfile FILE]`: the agent as one
// JavaScript file, dist/cutover-agent.mjs, that runs with the system `node` (>= 20)
// and no node_modules, so install.sh can put it on a host without npm.
//
// It bundles the compiled agent (agent/dist, as agent/bin/cutover-agent.js runs it),
// the workspace packages and every npm dependency (scripts/one-file.mjs). By default it
// builds first (`npm run build`); --no-build skips that when agent/dist is known to be
// fresh. It ends by running the bundle alone in an empty directory (`--version`), so a
// bundle that only works beside node_modules never leaves this script.
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { bundleOneFile, bundleScriptMain, versionFrom } from "./one-file.mjs";
import { root } from "./setup.mjs";

export const DEFAULT_OUTFILE = join(root, "dist", "cutover-agent.mjs");
const AGENT_CLI = join(root, "agent", "dist", "cli.js");

/**
 * Modules that esbuild must leave as runtime `require`s:
 * - ws loads bufferutil and utf-8-validate (optional native speed-ups) inside try/catch;
 *   left out, ws uses its pure-JS code, as it does in node_modules when they are absent.
 */
const EXTERNAL = ["bufferutil", "utf-8-validate"];

/** The bundle's second line: install.sh checks for it. */
const MARK = "// cutover-agent: one-file build of agent/dist/cli.js and its dependencies (scripts/bundle-agent.mjs).";

/** The same entry as agent/bin/cutover-agent.js, resolved from the repo root. */
const ENTRY = `import { main } from "./agent/dist/cli.js";\nawait main(process.argv);\n`;

/** Bundles the agent to `outfile`; returns its size and sha256. */
export async function bundleAgent({ outfile = DEFAULT_OUTFILE } = {}) {
  if (!existsSync(AGENT_CLI)) throw new Error(`${relative(root, AGENT_CLI)} is missing: run \`npm run build\` first (or this script without --no-build)`);
  return bundleOneFile({ what: "the agent bundle", entry: ENTRY, outfile, external: EXTERNAL, mark: MARK });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bundleScriptMain({
    script: "bundle-agent.mjs",
    defaultOutfile: DEFAULT_OUTFILE,
    bundle: bundleAgent,
    version: () => versionFrom(join(root, "agent", "dist", "version.js"), "AGENT_VERSION"),
  });
}
