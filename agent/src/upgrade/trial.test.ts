import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { settleTrial, swapAgentFile, trialMarker, upgradeFiles } from "./trial.js";
import { selfFile } from "./self-file.js";

const BUNDLE = (version: string) => `#!/usr/bin/env node\n// cutover-agent: one-file build of agent/dist/cli.js (test)\nconsole.log(${JSON.stringify(version)});\n`;

function installed(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-trial-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "cutover-agent.mjs");
  writeFileSync(file, BUNDLE("0.1.0"));
  return file;
}

test("the trial marker is SECONDS VERSION, at least one second", (t) => {
  t.is(trialMarker(60_000, "0.2.0"), "60 0.2.0\n");
  t.is(trialMarker(1_500, "0.2.0"), "2 0.2.0\n");
  t.is(trialMarker(0, "0.2.0"), "1 0.2.0\n");
});

test("a swap puts the new bytes in place, keeps the old ones as .previous and leaves a trial for the wrapper", async (t) => {
  const file = installed(t);
  writeFileSync(upgradeFiles(file).rolledBack, "an old rollback\n");
  const { previous } = await swapAgentFile({ file, bytes: Buffer.from(BUNDLE("0.2.0")), trialMs: 30_000, version: "0.2.0" });
  t.is(readFileSync(file, "utf8"), BUNDLE("0.2.0"));
  t.is(readFileSync(previous, "utf8"), BUNDLE("0.1.0"));
  t.is(readFileSync(upgradeFiles(file).trial, "utf8"), "30 0.2.0\n");
  t.false(existsSync(upgradeFiles(file).next), "the staged file was renamed, not copied");
  t.false(existsSync(upgradeFiles(file).rolledBack), "a new upgrade forgets the last rollback");
});

test("the first session ends the trial; a rollback the wrapper did is told once", async (t) => {
  const file = installed(t);
  await swapAgentFile({ file, bytes: Buffer.from(BUNDLE("0.2.0")), trialMs: 30_000, version: "0.2.0" });
  t.deepEqual(await settleTrial(file), { confirmed: true, rolledBack: undefined });
  t.false(existsSync(upgradeFiles(file).trial));
  t.deepEqual(await settleTrial(file), { confirmed: false, rolledBack: undefined }, "nothing to confirm twice");

  writeFileSync(upgradeFiles(file).rolledBack, "the new agent 0.3.0 exited with code 1; the previous file was put back\n");
  t.deepEqual(await settleTrial(file), { confirmed: false, rolledBack: "the new agent 0.3.0 exited with code 1; the previous file was put back" });
  t.deepEqual(await settleTrial(file), { confirmed: false, rolledBack: undefined }, "told once");
});

const WRAPPED = { CUTOVER_AGENT_WRAPPER: "1" };

test("only the installed bundle its wrapper runs may replace itself", (t) => {
  const file = installed(t);
  t.deepEqual(selfFile({ ...WRAPPED, CUTOVER_AGENT_FILE: file }, file), { ok: true, file });

  const refused = (env: NodeJS.ProcessEnv, argv1: string | undefined, reason: RegExp) => {
    const result = selfFile(env, argv1);
    t.false(result.ok);
    if (!result.ok) {
      t.regex(result.reason, reason);
      t.regex(result.reason, /nothing was changed: install the agent with install\.sh/);
    }
  };
  refused({}, file, /not started by install\.sh's wrapper/);
  refused({ CUTOVER_AGENT_WRAPPER: "2", CUTOVER_AGENT_FILE: file }, file, /speaks upgrade protocol 2, not 1/);
  refused({ ...WRAPPED }, file, /did not say which file it runs/);
  const checkout = join(file, "..", "cli.js");
  writeFileSync(checkout, "import './dist/cli.js';\n");
  refused({ ...WRAPPED, CUTOVER_AGENT_FILE: file }, checkout, /runs .*cli\.js, not the installed .*cutover-agent\.mjs/);
  refused({ ...WRAPPED, CUTOVER_AGENT_FILE: checkout }, checkout, /is not a one-file agent bundle/);
});
