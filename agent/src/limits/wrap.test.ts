import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { adoptProcess, instanceRecordPath, readInstanceRecord, startProcess, type ProcessSpec } from "../process/index.js";
import { shellQuote, wrapInCgroup, WRAPPER_FAILED_EXIT_CODE } from "./wrap.js";

const SPEC: ProcessSpec = { file: "node", args: ["server.js", "--port", "7001"], env: { PATH: "/usr/bin", PORT: "7001" }, cwd: "/srv/geoip" };
const DIRS = ["/sys/fs/cgroup/memory/cutover/geoip-blue", "/sys/fs/cgroup/cpu/cutover/geoip-blue"];

test("the wrapper joins each cgroup, then execs the app with its argv untouched", (t) => {
  const { spec } = wrapInCgroup(SPEC, { dirs: DIRS });
  t.deepEqual(spec, {
    file: "/bin/sh",
    args: [
      "-c",
      `for f in '/sys/fs/cgroup/memory/cutover/geoip-blue/cgroup.procs' '/sys/fs/cgroup/cpu/cutover/geoip-blue/cgroup.procs'; do echo $$ > "$f" || { echo "cutover: cannot move into the cgroup $f; the app was not started" >&2; exit 125; }; done; exec "$@"`,
      "cutover-limits",
      "node",
      "server.js",
      "--port",
      "7001",
    ],
    env: SPEC.env,
    cwd: SPEC.cwd,
    shownArgv: ["node", "server.js", "--port", "7001"],
  });
});

test("with run.user the move happens as root and setpriv drops to the user for the exec", (t) => {
  const { spec } = wrapInCgroup({ ...SPEC, uid: 998, gid: 997 }, { dirs: DIRS.slice(0, 1) });
  t.is(spec.uid, undefined);
  t.is(spec.gid, undefined);
  t.true(spec.args[1]!.endsWith(`exec '/usr/bin/setpriv' --reuid=998 --regid=997 --clear-groups -- "$@"`), spec.args[1]);
});

test("shell quoting survives quotes and dollars", (t) => {
  t.is(shellQuote("/a b/it's $HOME"), `'/a b/it'\\''s $HOME'`);
});

/** Runs a wrapped spec for real; stdout, exit and the spawned pid. */
async function run(spec: ProcessSpec): Promise<{ pid: number; stdout: string; stderr: string; code: number | null }> {
  const child = spawn(spec.file, spec.args, { cwd: spec.cwd, env: spec.env, uid: spec.uid, gid: spec.gid });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  // "close", not "exit": the output may still be in the pipes at exit.
  const [code] = (await once(child, "close")) as [number | null];
  return { pid: child.pid!, stdout, stderr, code };
}

function fakeCgroups(t: import("ava").ExecutionContext, names: string[]): string[] {
  const root = mkdtempSync(join(tmpdir(), "cutover-wrap-"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  return names.map((name) => {
    mkdirSync(join(root, name));
    writeFileSync(join(root, name, "cgroup.procs"), "");
    return join(root, name);
  });
}

const PRINT = "console.log(JSON.stringify({ pid: process.pid, argv: process.argv.slice(1), uid: process.getuid(), groups: process.getgroups() }))";

test("run for real: the app keeps the wrapper's pid, gets its arguments verbatim, and that pid is in every cgroup.procs", async (t) => {
  const dirs = fakeCgroups(t, ["memory", "cpu"]);
  const args = ["-e", PRINT, "--", "two words", "it's", "$HOME", "a;b", "-n"];
  const { spec } = wrapInCgroup({ file: process.execPath, args, env: { PATH: process.env.PATH ?? "" }, cwd: tmpdir() }, { dirs });
  const { pid, stdout, code } = await run(spec);
  t.is(code, 0);
  const seen = JSON.parse(stdout) as { pid: number; argv: string[] };
  t.is(seen.pid, pid, "exec kept the pid the agent records");
  t.deepEqual(seen.argv, ["two words", "it's", "$HOME", "a;b", "-n"]);
  for (const dir of dirs) t.is(readFileSync(join(dir, "cgroup.procs"), "utf8").trim(), String(pid));
});

test("run for real with a user: the app runs as that user without supplementary groups, moved in first", async (t) => {
  if (process.getuid?.() !== 0) return t.fail("this test switches users and must run as root");
  const dirs = fakeCgroups(t, ["unified"]);
  const { spec } = wrapInCgroup({ file: process.execPath, args: ["-e", PRINT], env: { PATH: process.env.PATH ?? "" }, cwd: tmpdir(), uid: 65534, gid: 65534 }, { dirs });
  const { pid, stdout, stderr, code } = await run(spec);
  t.is(code, 0, stderr);
  t.like(JSON.parse(stdout), { pid, uid: 65534, groups: [65534] });
  t.is(readFileSync(join(dirs[0]!, "cgroup.procs"), "utf8").trim(), String(pid));
});

test("a cgroup the wrapper cannot join stops it before the app starts, with a line for the log", async (t) => {
  const [dir] = fakeCgroups(t, ["memory"]);
  const { spec } = wrapInCgroup({ file: process.execPath, args: ["-e", "console.log('app ran')"], env: { PATH: process.env.PATH ?? "" }, cwd: tmpdir() }, { dirs: [join(dir!, "missing")] });
  const { stdout, stderr, code } = await run(spec);
  t.is(code, WRAPPER_FAILED_EXIT_CODE);
  t.is(stdout, "");
  t.regex(stderr, /cutover: cannot move into the cgroup .*missing\/cgroup.procs; the app was not started/);
});

test("an instance started through the wrapper records the app's own argv, and is adopted by it after an agent restart", async (t) => {
  const [dir] = fakeCgroups(t, ["memory"]);
  const stateDir = mkdtempSync(join(tmpdir(), "cutover-wrap-state-"));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const app = { file: process.execPath, args: ["-e", "setTimeout(() => {}, 30_000)"], env: {}, cwd: tmpdir() };
  const wrapped = wrapInCgroup(app, { dirs: [dir!] });
  const proc = await startProcess(wrapped.spec, { app: "geoip", color: "blue", release: "v1", port: 7001, address: "127.0.0.1" }, { stateDir, logDir: stateDir });
  t.teardown(() => proc.signal("SIGKILL"));
  for (let i = 0; i < 200 && readFileSync(`/proc/${proc.pid}/cmdline`, "utf8").startsWith("/bin/sh"); i++) await sleep(5);
  const path = instanceRecordPath(stateDir, "geoip", "blue");
  // The spawn returns before the shell has exec'd the app: the record holds the argv the app will show, not the wrapper's.
  t.deepEqual(readInstanceRecord(path).cmdline, [process.execPath, "-e", "setTimeout(() => {}, 30_000)"]);
  t.like(adoptProcess(readInstanceRecord(path)), { alive: true });
});
