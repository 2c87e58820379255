// The wrapper install.sh writes (/usr/local/bin/cutover-agent), run on its own with a fake node
// that acts out an agent: how it completes a self-upgrade and rolls an unconfirmed one back.
// The real agent and install.sh run in agent-upgrade.e2e.test.ts; this covers each path fast.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { tempDir } from "./harness/processes.js";
import { INSTALL_SH, PATHS } from "./install/host-root.js";

/** What the fake agent does is the content of the file it is started with. */
const FAKE_NODE = `#!/bin/sh
echo "$(cat "$2")" >>"$(dirname "$2")/runs"
case "$(cat "$2")" in
  crash) exit 1 ;;
  good) rm -f "$2.trial"; exit 0 ;;
  hang) trap 'exit 0' TERM; while :; do sleep 0.1; done ;;
  upgrade) cp "$2" "$2.previous"; echo good >"$2"; echo "30 0.9.0" >"$2.trial"; exit 75 ;;
esac
`;

/** install.sh's own render_wrapper, for a root in a temp dir and the fake node. */
function wrapper(t: ExecutionContext, start: { file: string; previous?: string; trial?: string }) {
  const root = tempDir(t, "cutover-wrapper-");
  const agent = join(root, PATHS.agentJs);
  mkdirSync(join(agent, ".."), { recursive: true });
  writeFileSync(join(root, "node"), FAKE_NODE);
  chmodSync(join(root, "node"), 0o755);
  const script = `source <(sed -n '/^readonly [A-Z_]*=[^(]*$/p; /^at()/p; /^render_wrapper()/,/^}/p' "${INSTALL_SH}"); ROOT="${root}"; NODE_BIN="${root}/node"; render_wrapper`;
  const rendered = spawnSync("bash", ["-c", script], { encoding: "utf8" });
  if (rendered.status !== 0) throw new Error(`rendering the wrapper failed: ${rendered.stderr}`);
  writeFileSync(join(root, "wrapper"), rendered.stdout);
  chmodSync(join(root, "wrapper"), 0o755);
  writeFileSync(agent, `${start.file}\n`);
  if (start.previous) writeFileSync(`${agent}.previous`, `${start.previous}\n`);
  if (start.trial) writeFileSync(`${agent}.trial`, start.trial);
  const read = (suffix: string) => (existsSync(`${agent}${suffix}`) ? readFileSync(`${agent}${suffix}`, "utf8").trim() : undefined);
  return {
    run: () => spawn(join(root, "wrapper"), ["--config", "x"], { stdio: ["ignore", "ignore", "pipe"] }),
    runs: () => readFileSync(join(agent, "..", "runs"), "utf8").trim().split("\n"),
    file: () => read(""),
    trial: () => read(".trial"),
    rolledBack: () => read(".rolled-back"),
  };
}

async function exitOf(child: ReturnType<typeof spawn>): Promise<number | null> {
  const [code] = (await once(child, "exit")) as [number | null];
  return code;
}

test("exit 75 starts the agent again, into the new file it wrote; its first session ends the trial", async (t) => {
  const w = wrapper(t, { file: "upgrade" });
  t.is(await exitOf(w.run()), 0);
  t.deepEqual(w.runs(), ["upgrade", "good"]);
  t.is(w.trial(), undefined);
  t.is(w.rolledBack(), undefined);
});

test("a new file that exits before it comes online is put back at the next start, with the exit code", async (t) => {
  const w = wrapper(t, { file: "crash", previous: "good", trial: "30 0.9.0\n" });
  t.is(await exitOf(w.run()), 0);
  t.deepEqual(w.runs(), ["crash", "good"]);
  t.is(w.file(), "good");
  t.is(w.trial(), undefined);
  t.is(w.rolledBack(), "the new agent 0.9.0 exited with code 1; the previous file was put back");
});

test("a new file that does not come online within the trial is stopped and put back", async (t) => {
  const w = wrapper(t, { file: "hang", previous: "good", trial: "1 0.9.0\n" });
  t.is(await exitOf(w.run()), 0);
  t.deepEqual(w.runs(), ["hang", "good"]);
  t.is(w.file(), "good");
  t.is(w.rolledBack(), "the new agent 0.9.0 did not come online within 1 s; the previous file was put back");
});

test("stopping the wrapper stops the agent and the loop, even in a trial (the next start rolls it back)", async (t) => {
  const w = wrapper(t, { file: "hang", previous: "good", trial: "30 0.9.0\n" });
  const child = w.run();
  await new Promise((resolve) => setTimeout(resolve, 500));
  child.kill("SIGTERM");
  t.is(await exitOf(child), 0);
  t.deepEqual(w.runs(), ["hang"]);
  t.is(w.file(), "hang");
  t.is(w.trial(), "30 0.9.0\nstarted");
});

test("an agent that exits on its own outside a trial ends the wrapper with its code (its supervisor decides)", async (t) => {
  const w = wrapper(t, { file: "crash" });
  t.is(await exitOf(w.run()), 1);
  t.deepEqual(w.runs(), ["crash"]);
});
