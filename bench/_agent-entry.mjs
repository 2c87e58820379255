// Which agent a benchmark runs: the checkout (agent/dist, as the tests run it) or the
// one-file bundle as install.sh installs it, with the node flags of its wrapper.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./_lib.mjs";
import { bundleAgent } from "../scripts/bundle-agent.mjs";

/** `--entry=bundle|dist` (default `fallback`) and `--node-flags=A,B` (instead of install.sh's). */
export function entryArgs(args, fallback) {
  const entryName = args.find((a) => a.startsWith("--entry="))?.slice("--entry=".length) ?? fallback;
  const flags = args.find((a) => a.startsWith("--node-flags="))?.slice("--node-flags=".length).split(",").filter((f) => f !== "");
  return { entryName, flags };
}

/** The node flags install.sh's wrapper runs the agent with (its AGENT_NODE_FLAGS line), so the two cannot drift. */
export function installedNodeFlags() {
  const line = /^readonly AGENT_NODE_FLAGS="([^"]*)"$/m.exec(readFileSync(join(root, "install.sh"), "utf8"));
  if (!line) throw new Error('install.sh has no `readonly AGENT_NODE_FLAGS="..."` line');
  return line[1].split(/\s+/).filter((flag) => flag !== "");
}

/** What node runs as the measured agent: the bundle as installed, or agent/dist. */
export async function agentEntry(entry, dir, flags) {
  if (entry === "dist") return { label: "agent/dist (agent/bin/cutover-agent.js), no node flags", options: {} };
  if (entry !== "bundle") throw new Error(`--entry must be bundle or dist, not ${entry}`);
  const bundle = await bundleAgent({ outfile: join(dir, "cutover-agent.mjs") });
  const nodeFlags = flags ?? installedNodeFlags();
  const source = flags === undefined ? "install.sh's" : "--node-flags";
  const label = `one-file bundle (${(bundle.bytes / 2 ** 20).toFixed(2)} MiB, sha256 ${bundle.sha256.slice(0, 12)}), node flags (${source}): ${nodeFlags.join(" ") || "none"}`;
  return { label, options: { entry: bundle.outfile, nodeFlags } };
}
