// `node scripts/bundle-agent.mjs [--no-build] [--outfile FILE]`: the agent as one
// JavaScript file, dist/cutover-agent.mjs, that runs with the system `node` (>= 20)
// and no node_modules, so install.sh can put it on a host without npm.
//
// It bundles the compiled agent (agent/dist, as agent/bin/cutover-agent.js runs it),
// the workspace packages and every npm dependency. By default it builds first
// (`npm run build`); --no-build skips that when agent/dist is known to be fresh.
// It ends by running the bundle alone in an empty directory (`--version`), so a
// bundle that only works beside node_modules never leaves this script.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pathToFileURL } from "node:url";
import { build as buildRepo, ensureInstalled, root } from "./setup.mjs";

const ESBUILD_INSTALL = "npm install -D esbuild@0.28.2";
export const DEFAULT_OUTFILE = join(root, "dist", "cutover-agent.mjs");
const AGENT_CLI = join(root, "agent", "dist", "cli.js");

/**
 * Modules that esbuild must leave as runtime `require`s:
 * - ws loads bufferutil and utf-8-validate (optional native speed-ups) inside try/catch;
 *   left out, ws uses its pure-JS code, as it does in node_modules when they are absent.
 */
const EXTERNAL = ["bufferutil", "utf-8-validate"];

/**
 * The output is ESM (the agent and execa are ESM), but ws, commander, systeminformation,
 * prom-client and protobufjs are CommonJS and call `require` for Node built-ins; esbuild's ESM output
 * has no `require`, so the banner makes one. The shebang lets the file run on its own.
 */
const BANNER = [
  "#!/usr/bin/env node",
  "// cutover-agent: one-file build of agent/dist/cli.js and its dependencies (scripts/bundle-agent.mjs).",
  'import { createRequire as __cutoverCreateRequire } from "node:module";',
  "const require = __cutoverCreateRequire(import.meta.url);",
].join("\n");

/** The same entry as agent/bin/cutover-agent.js, resolved from the repo root. */
const ENTRY = `import { main } from "./agent/dist/cli.js";\nawait main(process.argv);\n`;

async function loadEsbuild() {
  try {
    return await import("esbuild");
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
    throw new Error(`esbuild is not installed, and the agent bundle needs it: run \`${ESBUILD_INSTALL}\` in ${root} (or \`npm ci\` once it is a devDependency)`);
  }
}

/** Bundles the agent to `outfile`; returns its size and sha256. */
export async function bundleAgent({ outfile = DEFAULT_OUTFILE } = {}) {
  if (!existsSync(AGENT_CLI)) throw new Error(`${relative(root, AGENT_CLI)} is missing: run \`npm run build\` first (or this script without --no-build)`);
  const esbuild = await loadEsbuild();
  const result = await esbuild.build({
    stdin: { contents: ENTRY, resolveDir: root, sourcefile: "cutover-agent-entry.mjs", loader: "js" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    external: EXTERNAL,
    banner: { js: BANNER },
    // Error classes and loggers may print constructor names; keep them readable.
    keepNames: true,
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
  });
  const bytes = readFileSync(outfile);
  return {
    outfile,
    bytes: bytes.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    inputs: Object.keys(result.metafile.inputs).length,
  };
}

/** Runs the bundle as the only file of an empty directory; throws unless it prints `version`. */
export function checkAlone(outfile, version) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-bundle-check-"));
  try {
    const copy = join(dir, "cutover-agent.mjs");
    copyFileSync(outfile, copy);
    const printed = execFileSync(process.execPath, [copy, "--version"], { cwd: dir, encoding: "utf8", env: { ...process.env, NODE_PATH: "" } }).trim();
    if (printed !== version) throw new Error(`the bundle alone printed "${printed}" for --version, expected "${version}"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function agentVersion() {
  const text = readFileSync(join(root, "agent", "dist", "version.js"), "utf8");
  const match = /AGENT_VERSION\s*=\s*"([^"]+)"/.exec(text);
  if (!match) throw new Error("agent/dist/version.js has no AGENT_VERSION");
  return match[1];
}

function parseArgs(argv) {
  const options = { build: true, outfile: DEFAULT_OUTFILE };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--no-build") options.build = false;
    else if (arg === "--outfile" && argv[i + 1]) options.outfile = argv[++i];
    else throw new Error(`unknown argument "${arg}" (usage: node scripts/bundle-agent.mjs [--no-build] [--outfile FILE])`);
  }
  return options;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const options = parseArgs(process.argv.slice(2));
    if (options.build) {
      ensureInstalled();
      buildRepo();
    }
    const started = performance.now();
    const bundle = await bundleAgent({ outfile: options.outfile });
    checkAlone(bundle.outfile, agentVersion());
    const mib = (bundle.bytes / 1024 / 1024).toFixed(2);
    console.log(
      `bundle-agent: ${relative(process.cwd(), bundle.outfile) || bundle.outfile} ` +
        `(${mib} MiB, ${bundle.inputs} inputs, sha256 ${bundle.sha256}) in ${Math.round(performance.now() - started)} ms; runs alone`,
    );
  } catch (error) {
    console.error(`bundle-agent: ${error.message}`);
    process.exit(1);
  }
}
