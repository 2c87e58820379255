import { readFileSync, realpathSync } from "node:fs";

/** What the wrapper install.sh writes sets, so the agent knows it is started by it (and which file it runs). */
export const WRAPPER_ENV = "CUTOVER_AGENT_WRAPPER";
export const AGENT_FILE_ENV = "CUTOVER_AGENT_FILE";
/** The wrapper protocol this agent speaks: exit EXIT_UPGRADE to be started again; AGENT.trial is its watchdog. */
export const WRAPPER_PROTOCOL = "1";
/** The second line of a bundle made by scripts/bundle-agent.mjs (install.sh checks the same). */
export const BUNDLE_MARK = "cutover-agent: one-file build";

export type SelfFile = { ok: true; file: string } | { ok: false; reason: string };

/**
 * The installed agent file this process runs, when it may replace it: it was started by
 * install.sh's wrapper (which restarts it and rolls a failed upgrade back), the wrapper's file
 * is the one node runs (`argv1`), and that file is a one-file bundle. Otherwise the reason,
 * e.g. for an agent run from a checkout (agent/bin/cutover-agent.js) or by an older wrapper.
 */
export function selfFile(env: NodeJS.ProcessEnv, argv1: string | undefined): SelfFile {
  const refuse = (why: string): SelfFile => ({ ok: false, reason: `${why}; nothing was changed: install the agent with install.sh (which writes the wrapper that completes upgrades), or upgrade it by running install.sh again` });
  if (env[WRAPPER_ENV] !== WRAPPER_PROTOCOL) {
    return refuse(env[WRAPPER_ENV] ? `this agent's wrapper speaks upgrade protocol ${env[WRAPPER_ENV]}, not ${WRAPPER_PROTOCOL}` : "this agent was not started by install.sh's wrapper (an older install, or run by hand or from a checkout)");
  }
  const declared = env[AGENT_FILE_ENV];
  if (!declared || !argv1) return refuse("the wrapper did not say which file it runs");
  let running: string;
  let installed: string;
  try {
    running = realpathSync(argv1);
    installed = realpathSync(declared);
  } catch (error) {
    return refuse(`the agent file is not readable (${(error as Error).message})`);
  }
  if (running !== installed) return refuse(`this agent runs ${running}, not the installed ${installed}`);
  const second = readFileSync(running, "utf8").split("\n", 2)[1] ?? "";
  if (!second.includes(BUNDLE_MARK)) return refuse(`${running} is not a one-file agent bundle`);
  return { ok: true, file: running };
}
