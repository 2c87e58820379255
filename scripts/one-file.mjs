// One JavaScript file from a compiled entry and everything it imports, runnable by the
// system `node` (>= 20) with no node_modules beside it. scripts/bundle-agent.mjs (the
// agent, for install.sh) and scripts/bundle-cli.mjs (the `cutover` CLI) are made with it.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, relative } from "node:path";
import { build, ensureInstalled, root } from "./setup.mjs";

const ESBUILD_INSTALL = "npm install -D esbuild@0.28.2";

async function loadEsbuild(what) {
  try {
    return await import("esbuild");
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
    throw new Error(`esbuild is not installed, and ${what} needs it: run \`${ESBUILD_INSTALL}\` in ${root} (or \`npm ci\` once it is a devDependency)`);
  }
}

/**
 * Bundles `entry` (module source, resolved from the repo root) to `outfile` as ESM and
 * returns its size, sha256 and input count.
 *
 * `external`: modules left as runtime imports or requires (a native addon, an optional
 * speed-up loaded inside try/catch). The output is ESM, but CommonJS dependencies
 * (ws, commander, protobufjs, ...) call `require` for Node built-ins and ESM output has
 * none, so the banner makes one; its shebang lets the file run on its own, and its
 * second line (`mark`) tells what the file is (install.sh checks the agent's).
 */
export async function bundleOneFile({ what, entry, outfile, external = [], mark }) {
  const esbuild = await loadEsbuild(what);
  const banner = [
    "#!/usr/bin/env node",
    mark,
    'import { createRequire as __cutoverCreateRequire } from "node:module";',
    "const require = __cutoverCreateRequire(import.meta.url);",
  ].join("\n");
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: root, sourcefile: `${basename(outfile)}-entry.mjs`, loader: "js" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    external,
    banner: { js: banner },
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

/** Runs `outfile` as the only file of an empty directory with `--version`; throws unless it prints `version`. */
export function checkAlone(outfile, version) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-bundle-check-"));
  try {
    const copy = join(dir, basename(outfile));
    copyFileSync(outfile, copy);
    const printed = execFileSync(process.execPath, [copy, "--version"], { cwd: dir, encoding: "utf8", env: { ...process.env, NODE_PATH: "" } }).trim();
    if (printed !== version) throw new Error(`${basename(outfile)} alone printed "${printed}" for --version, expected "${version}"`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `const NAME = "x.y.z"` from a compiled version module. */
export function versionFrom(file, name) {
  const match = new RegExp(`${name}\\s*=\\s*"([^"]+)"`).exec(readFileSync(file, "utf8"));
  if (!match) throw new Error(`${file} has no ${name}`);
  return match[1];
}

/** The `[--no-build] [--outfile FILE]` arguments both bundle scripts take. */
export function parseBundleArgs(argv, script, defaultOutfile) {
  const options = { build: true, outfile: defaultOutfile };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--no-build") options.build = false;
    else if (arg === "--outfile" && argv[i + 1]) options.outfile = argv[++i];
    else throw new Error(`unknown argument "${arg}" (usage: node scripts/${script} [--no-build] [--outfile FILE])`);
  }
  return options;
}

/**
 * The command line of a bundle script: build the repo (unless --no-build), bundle with
 * `bundle({ outfile })`, check the file runs alone (`--version` prints `version()`), and
 * print one line with its size and sha256.
 */
export async function bundleScriptMain({ script, defaultOutfile, bundle, version }) {
  const name = script.replace(/\.mjs$/, "");
  try {
    const options = parseBundleArgs(process.argv.slice(2), script, defaultOutfile);
    if (options.build) {
      ensureInstalled();
      build();
    }
    const started = performance.now();
    const result = await bundle({ outfile: options.outfile });
    checkAlone(result.outfile, version());
    const mib = (result.bytes / 1024 / 1024).toFixed(2);
    console.log(
      `${name}: ${relative(process.cwd(), result.outfile) || result.outfile} ` +
        `(${mib} MiB, ${result.inputs} inputs, sha256 ${result.sha256}) in ${Math.round(performance.now() - started)} ms; runs alone`,
    );
  } catch (error) {
    console.error(`${name}: ${error.message}`);
    process.exit(1);
  }
}
