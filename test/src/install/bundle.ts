import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../harness/processes.js";

export const BUNDLE_PATH = join(repoRoot, "dist", "cutover-agent.mjs");
const BUNDLE_SCRIPT = join(repoRoot, "scripts", "bundle-agent.mjs");
/** Compiled code the bundle is made from: when any of it is newer, the bundle is stale. */
const BUNDLE_INPUTS = ["agent/dist", "packages/log/dist", "packages/protocol/dist", "packages/protocol/gen", "packages/spec/dist"];

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

function isFresh(): boolean {
  if (!existsSync(BUNDLE_PATH)) return false;
  const built = statSync(BUNDLE_PATH).mtimeMs;
  return BUNDLE_INPUTS.every((dir) => newestMtimeMs(join(repoRoot, dir)) <= built);
}

/**
 * dist/cutover-agent.mjs, (re)built from the compiled agent with scripts/bundle-agent.mjs
 * when it is missing or older than that code. Throws with the script's words (e.g.
 * "esbuild is not installed ...") when it cannot be built: tests must not run a stale
 * bundle or silently skip.
 */
export async function ensureAgentBundle(): Promise<string> {
  if (isFresh()) return BUNDLE_PATH;
  // --no-build: `tsc -b test` already compiled what the bundle is made from.
  const child = spawn(process.execPath, [BUNDLE_SCRIPT, "--no-build"], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d));
  child.stderr.on("data", (d: Buffer) => (output += d));
  const [code] = (await once(child, "close")) as [number | null];
  if (code !== 0) throw new Error(`building the agent bundle failed (node scripts/bundle-agent.mjs --no-build, exit ${code}):\n${output.trim()}`);
  return BUNDLE_PATH;
}
