// The hook runner with real processes: exit codes, the timeout killing the whole process group, the output tail, the user.
import test from "ava";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { lookupUserInPasswd, type ProcessSpec } from "../process/index.js";
import { hookCommand, hookRequestOf } from "./command.js";
import { OutputTail, runHook } from "./run.js";

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-hook-"));
  // The app user must be able to enter the directory it runs in.
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const node = (cwd: string, script: string): ProcessSpec => ({ file: process.execPath, args: ["-e", script], env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, cwd });

/** Running, as opposed to gone or a zombie waiting for a parent that will not reap it (PID 1 in a container). */
const isRunning = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
};

test("a hook that exits 0: its output streamed line by line and kept as the tail", async (t) => {
  const lines: string[] = [];
  const { exitCode, signal, timedOut, spawnError, outputTail, durationMs } = await runHook(node(scratch(t), 'console.log("migrating 1/2"); console.error("warn: slow"); console.log("migrated")'), {
    timeoutMs: 10_000,
    onLine: (line) => lines.push(line),
  });
  t.is(exitCode, 0);
  t.is(signal, null);
  t.false(timedOut);
  t.is(spawnError, undefined);
  t.deepEqual([...lines].sort(), ["migrated", "migrating 1/2", "warn: slow"]);
  t.deepEqual(outputTail.split("\n").sort(), ["migrated", "migrating 1/2", "warn: slow"]);
  t.true(durationMs > 0 && durationMs < 10_000);
});

test("a hook that exits 3: the exit code and what it printed on stderr", async (t) => {
  const { exitCode, signal, timedOut, outputTail } = await runHook(node(scratch(t), 'console.error("relation users is locked"); process.exit(3)'), { timeoutMs: 10_000 });
  t.is(exitCode, 3);
  t.is(signal, null);
  t.false(timedOut);
  t.is(outputTail, "relation users is locked");
});

test("a hook past its timeout: its whole process group is killed, the child it forked too", async (t) => {
  const script = `
    const { spawn } = require("node:child_process");
    const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
    console.log("child " + child.pid);
    setInterval(() => {}, 1000);`;
  const lines: string[] = [];
  const started = Date.now();
  const { exitCode, signal, timedOut, outputTail, durationMs } = await runHook(node(scratch(t), script), { timeoutMs: 1_500, onLine: (line) => lines.push(line) });
  t.true(timedOut);
  t.is(exitCode, null);
  t.is(signal, "SIGKILL");
  t.true(durationMs >= 1_500 && Date.now() - started < 6_000, `${durationMs} ms`);
  const pid = Number(/^child (\d+)$/.exec(lines[0] ?? "")?.[1]);
  t.true(pid > 0, outputTail);
  await sleep(200);
  t.false(isRunning(pid), "the hook's own child was killed with it");
});

test("a hook whose program does not exist: a spawn error, no exit code", async (t) => {
  const { exitCode, timedOut, spawnError } = await runHook({ file: "/nonexistent/migrate", args: [], env: {}, cwd: scratch(t) }, { timeoutMs: 5_000 });
  t.is(exitCode, null);
  t.false(timedOut);
  t.regex(spawnError ?? "", /ENOENT/);
});

test("a chatty hook: the tail holds its last bytes only, and streaming stops after the first lines", async (t) => {
  const lines: string[] = [];
  const { exitCode, outputTail } = await runHook(node(scratch(t), 'for (let i = 0; i < 5000; i++) console.log("line " + i + " " + "x".repeat(40))'), {
    timeoutMs: 20_000,
    streamLines: 5,
    onLine: (line) => lines.push(line),
  });
  t.is(exitCode, 0);
  t.true(Buffer.byteLength(outputTail) <= 4096, `${Buffer.byteLength(outputTail)} bytes`);
  t.true(outputTail.endsWith(`line 4999 ${"x".repeat(40)}`));
  t.false(outputTail.includes("line 0 "));
  t.is(lines.length, 6);
  t.regex(lines[5]!, /more output is not streamed/);
});

test("the output tail cuts a single line longer than its limit to its end", (t) => {
  const tail = new OutputTail(10);
  tail.push("first");
  tail.push("0123456789abcdef");
  t.is(tail.text(), "6789abcdef");
});

test("a hook runs as the app's run.user, with the app's environment and not the agent's", async (t) => {
  if (process.geteuid?.() !== 0) return t.pass("needs root to switch users");
  const nobody = lookupUserInPasswd("nobody");
  const cwd = scratch(t);
  const request = hookRequestOf({ hook: "post_switch", command: [process.execPath, "-e", "console.log([process.getuid(), process.getgid(), process.cwd(), process.env.PORT, process.env.COLOR, process.env.NODE_ENV, process.env.CUTOVER_HOOK, process.env.AGENT_ONLY ?? '-', process.argv[1]].join(' '))", "${COLOR}"], timeoutMs: 5_000 });
  const spec = hookCommand(request, { command: ["unused"], env: { NODE_ENV: "production" }, user: "nobody" }, { port: 7002, address: "127.0.0.1", color: "green", release: "v2", releaseDir: cwd }, {
    rootApps: "refuse",
    baseEnv: { PATH: process.env.PATH, AGENT_ONLY: "x" },
  });
  const { exitCode, outputTail } = await runHook(spec, { timeoutMs: 5_000 });
  t.is(exitCode, 0, outputTail);
  t.is(outputTail, `${nobody.uid} ${nobody.gid} ${cwd} 7002 green production post_switch - green`);
});
