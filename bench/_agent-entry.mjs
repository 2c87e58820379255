// Which agent a benchmark runs: the checkout (agent/dist, as the tests run it) or the
// one-file bundle as install.sh installs it, with the node flags of its wrapper.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { root } from "./_lib.mjs";
import { bundleAgent } from "../scripts/bundle-agent.mjs";

/**
 * `--entry=bundle|dist` (default `fallback`), `--node-flags=A,B` (instead of install.sh's) and
 * `--niceness=installed|inherit|N` (default `niceFallback`): the agent's priority, install.sh's
 * unit's Nice= or the bench's own.
 */
export function entryArgs(args, fallback, niceFallback = "inherit") {
  const entryName = args.find((a) => a.startsWith("--entry="))?.slice("--entry=".length) ?? fallback;
  const flags = args.find((a) => a.startsWith("--node-flags="))?.slice("--node-flags=".length).split(",").filter((f) => f !== "");
  const nice = args.find((a) => a.startsWith("--niceness="))?.slice("--niceness=".length) ?? niceFallback;
  const niceness = nice === "installed" ? installedNiceness() : nice === "inherit" ? undefined : Number(nice);
  if (niceness !== undefined && !Number.isInteger(niceness)) throw new Error(`--niceness=${nice}: installed, inherit or an integer`);
  return { entryName, flags, niceness };
}

/** The niceness install.sh's systemd unit gives the agent (its Nice= line). */
export function installedNiceness() {
  const line = /^Nice=(-?\d+)$/m.exec(readFileSync(join(root, "install.sh"), "utf8"));
  if (!line) throw new Error("install.sh's unit has no Nice= line");
  return Number(line[1]);
}

/** The node flags install.sh's wrapper runs the agent with (its AGENT_NODE_FLAGS line), so the two cannot drift. */
export function installedNodeFlags() {
  const line = /^readonly AGENT_NODE_FLAGS="([^"]*)"$/m.exec(readFileSync(join(root, "install.sh"), "utf8"));
  if (!line) throw new Error('install.sh has no `readonly AGENT_NODE_FLAGS="..."` line');
  return line[1].split(/\s+/).filter((flag) => flag !== "");
}

/** What node runs as the measured agent: the bundle as installed, or agent/dist. */
export async function agentEntry(entry, dir, flags, niceness) {
  const nice = niceness === undefined ? "" : `, niceness ${niceness}`;
  if (entry === "dist") return { label: `agent/dist (agent/bin/cutover-agent.js), no node flags${nice}`, options: { niceness } };
  if (entry !== "bundle") throw new Error(`--entry must be bundle or dist, not ${entry}`);
  const bundle = await bundleAgent({ outfile: join(dir, "cutover-agent.mjs") });
  const nodeFlags = flags ?? installedNodeFlags();
  const source = flags === undefined ? "install.sh's" : "--node-flags";
  const label = `one-file bundle (${(bundle.bytes / 2 ** 20).toFixed(2)} MiB, sha256 ${bundle.sha256.slice(0, 12)}), node flags (${source}): ${nodeFlags.join(" ") || "none"}${nice}`;
  return { label, options: { entry: bundle.outfile, nodeFlags, niceness } };
}
