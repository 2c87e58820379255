import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../harness/processes.js";

/** A one-file build, the script that makes it, and the compiled code it is made from: when any of that is newer, the file is stale. */
interface OneFile {
  path: string;
  script: string;
  inputs: string[];
}

const PACKAGES = ["packages/log/dist", "packages/protocol/dist", "packages/protocol/gen", "packages/spec/dist"];
const AGENT: OneFile = { path: join(repoRoot, "dist", "cutover-agent.mjs"), script: "bundle-agent.mjs", inputs: ["agent/dist", ...PACKAGES] };
const CLI: OneFile = { path: join(repoRoot, "dist", "cutover.mjs"), script: "bundle-cli.mjs", inputs: ["coordinator/dist", ...PACKAGES] };

function newestMtimeMs(dir: string): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtimeMs(path));
    else if (entry.name.endsWith(".js")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function isFresh(file: OneFile): boolean {
  if (!existsSync(file.path)) return false;
  const built = statSync(file.path).mtimeMs;
  return file.inputs.every((dir) => newestMtimeMs(join(repoRoot, dir)) <= built);
}

/**
 * `file`, (re)built from the compiled code with its script when it is missing or older than
 * that code. Throws with the script's words (e.g. "esbuild is not installed ...") when it
 * cannot be built: tests must not run a stale bundle or silently skip.
 */
async function ensureOneFile(file: OneFile): Promise<string> {
  if (isFresh(file)) return file.path;
  // --no-build: `tsc -b test` already compiled what the bundle is made from.
  const child = spawn(process.execPath, [join(repoRoot, "scripts", file.script), "--no-build"], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d));
  child.stderr.on("data", (d: Buffer) => (output += d));
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`building ${file.path} failed (node scripts/${file.script} --no-build, exit ${code}):\n${output.trim()}`);
  return file.path;
}

/** dist/cutover-agent.mjs, the agent as install.sh installs it (scripts/bundle-agent.mjs). */
export function ensureAgentBundle(): Promise<string> {
  return ensureOneFile(AGENT);
}

/** dist/cutover.mjs, the CLI that runs with no node_modules (scripts/bundle-cli.mjs). */
export function ensureCliBundle(): Promise<string> {
  return ensureOneFile(CLI);
}

/**
 * A copy of the agent bundle that says it is `version` (its AGENT_VERSION constant replaced,
 * nothing else), written to `dir`. `startup` makes it a broken build that still answers
 * `--version`: "crash" exits 1 at start, "hang" never gets as far as connecting.
 */
export function patchedAgentBundle(source: string, dir: string, options: { version: string; startup?: "crash" | "hang" }): string {
  const text = readFileSync(source, "utf8");
  const constant = /var AGENT_VERSION\s*=\s*"[^"]*";/;
  if (!constant.test(text)) throw new Error(`${source} has no AGENT_VERSION constant to patch (did the bundler rename it?)`);
  const lines = text.replace(constant, `var AGENT_VERSION=${JSON.stringify(options.version)};`).split("\n");
  const broken = {
    crash: 'process.stderr.write("cutover-agent (test build): crashing at start\\n"); process.exit(1);',
    hang: 'process.stderr.write("cutover-agent (test build): hanging at start\\n"); await new Promise(() => setInterval(() => {}, 1000));',
  };
  if (options.startup) lines.splice(2, 0, `if (!process.argv.includes("--version")) { ${broken[options.startup]} }`);
  const out = join(dir, `cutover-agent-${options.version}.mjs`);
  writeFileSync(out, lines.join("\n"));
  return out;
}
