// A hook runs at most once per command id, also across an agent restart: the journal answers a repeated id.
import test from "ava";
import { createLogger } from "@cutover/log";
import { v1, type cutover } from "@cutover/protocol";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { hookHandler } from "./handler.js";
import { HookJournal } from "./journal.js";
import type { runHook } from "./run.js";

const Status = v1.CommandResult.Status;

function agent(t: { teardown(fn: () => void): void }) {
  const stateDir = mkdtempSync(join(tmpdir(), "cutover-hook-journal-"));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  let runs = 0;
  /** A fresh handler over the same state dir: what a restarted agent has. */
  const start = (run?: typeof runHook) =>
    hookHandler({
      address: "127.0.0.1",
      admission: { rootApps: "allow" },
      releases: { dirOf: async () => stateDir },
      live: () => null,
      emit: () => {},
      log: createLogger("test", { write: () => {} }),
      journal: new HookJournal(stateDir),
      run:
        run ??
        (async () => {
          runs++;
          return { exitCode: 0, signal: null, timedOut: false, outputTail: "password=hunter2", durationMs: 5 };
        }),
    });
  return { stateDir, start, runs: () => runs };
}

const command = (commandId: string): cutover.v1.Command =>
  v1.Command.create({ commandId, runHook: { app: { name: "geoip", run: { command: ["node"] }, bluePort: 7001, greenPort: 7002, proxy: { listenPort: 8080 } }, release: "v2", hook: "pre_deploy", command: ["node", "migrate.js"], timeoutMs: 5_000 } });

test("a restarted agent asked a hook's command id again answers with how it ended, without running it", async (t) => {
  const a = agent(t);
  const first = await a.start()(command("d1.pre_deploy"));
  t.is(first.status, Status.OK);
  const again = await a.start()(command("d1.pre_deploy"));
  t.is(again.status, Status.OK);
  t.is(a.runs(), 1);
  t.is(again.hookRan?.outputTail, "", "the output is not kept on disk");
  const saved = readdirSync(join(a.stateDir, "hooks")).map((name) => readFileSync(join(a.stateDir, "hooks", name), "utf8")).join("");
  t.false(saved.includes("hunter2"));
  await a.start()(command("d2.pre_deploy"));
  t.is(a.runs(), 2, "another command id runs");
});

test("a hook the agent was running when it died is not run again: ERR_HOOK_INTERRUPTED", async (t) => {
  const a = agent(t);
  // The first agent dies while its hook runs: the run never settles.
  void a.start(() => new Promise(() => {}))(command("d1.pre_deploy"));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const again = await a.start()(command("d1.pre_deploy"));
  t.is(again.status, Status.FAILED);
  t.is(again.errorCode, "ERR_HOOK_INTERRUPTED");
  t.regex(again.message ?? "", /^the agent restarted while this pre_deploy hook ran \(started .*\); how it ended is unknown and it is not run a second time/);
  t.is(a.runs(), 0);
});
