import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { createLogger } from "@cutover/log";
import { v1, type cutover } from "@cutover/protocol";
import { upgradeHandler, type UpgradeDeps } from "./handler.js";
import { upgradeFiles } from "./trial.js";

const OLD = "#!/usr/bin/env node\n// cutover-agent: one-file build (test)\nold\n";
const NEW = Buffer.from("#!/usr/bin/env node\n// cutover-agent: one-file build (test)\nnew\n");
const SHA = createHash("sha256").update(NEW).digest("hex");

function setup(t: { teardown(fn: () => void): void }, overrides: Partial<UpgradeDeps> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-upgrade-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "cutover-agent.mjs");
  writeFileSync(file, OLD);
  const state = { restarts: 0 };
  const deps: UpgradeDeps = {
    version: "0.1.0",
    fetchChunk: async (_sha, offset, length) => ({ data: NEW.subarray(offset, offset + length), totalSize: NEW.length, error: "" }),
    verifiesBundle: (sha, signature) => sha === SHA && signature === "good",
    restart: () => state.restarts++,
    log: createLogger("test", { write: () => {} }),
    env: { CUTOVER_AGENT_WRAPPER: "1", CUTOVER_AGENT_FILE: file },
    argv1: file,
    versionOf: async () => "0.2.0",
    ...overrides,
  };
  const run = (upgrade: cutover.v1.IUpgradeAgent) =>
    upgradeHandler(deps)(v1.Command.create({ commandId: "c1", upgradeAgent: { bundleSha256: SHA, sizeBytes: NEW.length, signature: "good", version: "0.2.0", ...upgrade } }));
  return { file, state, run };
}

test("a signed bundle of the named version replaces the file under a trial and the agent restarts", async (t) => {
  const { file, state, run } = setup(t);
  const result = await run({ trialMs: 5_000 });
  t.is(result.status, v1.CommandResult.Status.OK, result.message ?? "");
  t.like(result.agentUpgrading, { fromVersion: "0.1.0", toVersion: "0.2.0", agentFile: file, previousFile: `${file}.previous` });
  t.deepEqual(readFileSync(file), NEW);
  t.is(readFileSync(`${file}.previous`, "utf8"), OLD);
  t.is(readFileSync(upgradeFiles(file).trial, "utf8"), "5 0.2.0\n");
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.is(state.restarts, 1, "restarts after the answer is sent");
});

const refuses = test.macro({
  async exec(t, input: { upgrade?: cutover.v1.IUpgradeAgent; deps?: Partial<UpgradeDeps> }, code: string, message: RegExp) {
    const { file, state, run } = setup(t, input.deps);
    const result = await run(input.upgrade ?? {});
    t.is(result.status, v1.CommandResult.Status.REJECTED);
    t.is(result.errorCode, code);
    t.regex(result.message ?? "", message);
    t.is(readFileSync(file, "utf8"), OLD, "the installed file is untouched");
    for (const left of [upgradeFiles(file).trial, upgradeFiles(file).next, `${file}.previous`]) t.false(existsSync(left), `no ${left}`);
    await new Promise((resolve) => setTimeout(resolve, 400));
    t.is(state.restarts, 0);
  },
  title: (title) => title ?? "",
});

test("an older version needs allowDowngrade", refuses, { deps: { version: "0.3.0" } }, "ERR_UPGRADE_DOWNGRADE", /older than the running 0\.3\.0: pass --allow-downgrade/);
test("a signature that does not verify", refuses, { upgrade: { signature: "forged" } }, "ERR_UPGRADE_BAD_SIGNATURE", /does not verify with the pinned coordinator key/);
test("bytes that do not hash to the named sha256", refuses, { deps: { fetchChunk: async () => ({ data: Buffer.from("x".repeat(NEW.length)), totalSize: NEW.length, error: "" }) } }, "ERR_UPGRADE_HASH_MISMATCH", /hashes to [0-9a-f]{64}, not/);
test("a bundle that says another version", refuses, { deps: { versionOf: async () => "0.2.1" } }, "ERR_UPGRADE_VERSION_MISMATCH", /says it is 0\.2\.1, not 0\.2\.0/);
test("a bundle that does not run", refuses, { deps: { versionOf: async () => { throw new Error("SyntaxError: Unexpected token"); } } }, "ERR_UPGRADE_BUNDLE_BROKEN", /does not run .*SyntaxError/);
test("an agent not started by install.sh's wrapper", refuses, { deps: { env: {} } }, "ERR_UPGRADE_NOT_INSTALLED", /not started by install\.sh's wrapper/);
test("a chunk error from the coordinator", refuses, { deps: { fetchChunk: async () => ({ data: new Uint8Array(), totalSize: 0, error: "no such bundle" }) } }, "ERR_UPGRADE_FETCH", /cannot fetch the bundle: no such bundle/);
