// install.sh against a temporary root prefix (--root) with systemd stubbed (--no-systemd):
// the real script, the real one-file agent it installs, a real coordinator. Nothing
// outside the temp dirs is touched, so it runs on the dev machine and in CI.
import { lstatSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { HostView } from "@cutover/coordinator";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startCoordinator, type CoordinatorProcess } from "./harness/fleet.js";
import { hostProcesses } from "./harness/host-processes.js";
import { tempDir } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";
import { ensureAgentBundle } from "./install/bundle.js";
import { agentPids, bootTmpfiles, hostRoot, parentPid, PATHS, AGENT_RUNTIME, readPidFile, runInstaller, snapshot, under, without } from "./install/host-root.js";

/** One host of `cutover hosts --json`. */
type HostJson = HostView;

const NOBODY = 65534;
// The tests that install an agent run one at a time: each starts a coordinator and an
// agent, and on a 2-core machine running them all at once only makes each one slow.
let bundle = "";
/** One coordinator for the refusal cases, which never get as far as enrolling. */
let shared: CoordinatorProcess;
const sharedTeardowns: (() => void | Promise<void>)[] = [];

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error("the install.sh tests need root: install.sh refuses to run without it");
  bundle = await ensureAgentBundle();
  shared = await startCoordinator({ teardown: (fn) => sharedTeardowns.push(fn) });
});

test.after.always(async () => {
  for (const fn of sharedTeardowns.reverse()) await fn();
});

/** A loopback address of its own per test, as the fleet harness does. */
function loopback(): string {
  return `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.${2 + Math.floor(Math.random() * 250)}`;
}

async function hosts(coordinator: CoordinatorProcess): Promise<HostJson[]> {
  const result = await coordinator.cli(["hosts", "--json"]);
  if (result.exitCode !== 0) throw new Error(`cutover hosts failed (${result.exitCode}): ${result.stderr}`);
  return JSON.parse(result.stdout) as HostJson[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function output(result: { stdout: string; stderr: string }): string {
  return `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

/** The flags an operator passes on a fresh host, plus the two that keep the test off the real one. */
function installArgs(root: string, coordinator: CoordinatorProcess, token: string, address: string, extra: string[] = []): string[] {
  return [
    "--root", root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath,
    "--coordinator", coordinator.url, "--token", token,
    "--name", "host-a", "--labels", "role=geoip", "--address", address, "--nginx", "managed",
    ...extra,
  ];
}

/** A coordinator and a root where install.sh has installed host-a, online. */
async function installed(t: ExecutionContext) {
  const coordinator = await startCoordinator(t);
  const root = hostRoot(t);
  const address = loopback();
  const token = await coordinator.enrollmentToken();
  const pristine = snapshot(root);
  const first = await runInstaller(t, installArgs(root, coordinator, token, address));
  if (first.exitCode !== 0) throw new Error(`install.sh failed (${first.exitCode}):\n${output(first)}`);
  return { coordinator, root, address, token, pristine, first };
}

test.serial("install.sh installs the one-file agent, which enrolls and shows online; a second identical run reports no changes", async (t) => {
  const { coordinator, root, address, token, first } = await installed(t);

  t.regex(first.stdout, /the agent is online: .*coordinator link .*to=online why=enrolled/);
  t.regex(first.stdout, /done: cutover-agent host-a is installed and online/);
  for (const call of ["daemon-reload", "enable cutover-agent.service", "restart cutover-agent.service"]) {
    t.true(first.stdout.includes(`systemd stubbed (--no-systemd): not running systemctl ${call}`), `stubs systemctl ${call}`);
  }
  const [host] = await hosts(coordinator);
  t.like(host, { name: "host-a", address, state: "online", labels: { role: "geoip" }, agentVersion: "0.1.0" });

  // The agent that enrolled is the installed file, started through the wrapper with the written config.
  const pid = readPidFile(root);
  t.deepEqual(agentPids(root).map(parentPid), [pid]);
  t.deepEqual(readFileSync(join(root, PATHS.agentJs)), readFileSync(bundle));
  const wrapper = readFileSync(join(root, PATHS.wrapper), "utf8");
  t.true(wrapper.includes(`\nagent="${join(root, PATHS.agentJs)}"\n`), wrapper);
  t.true(wrapper.includes(` "${process.execPath}" --lite-mode "$agent" "$@" &\n`), "node with install.sh's AGENT_NODE_FLAGS (docs/install.md)");
  t.is(statSync(join(root, PATHS.wrapper)).mode & 0o777, 0o755);

  const config = readFileSync(join(root, PATHS.config), "utf8");
  t.is(statSync(join(root, PATHS.config)).mode & 0o777, 0o600, "the config holds the token: root only");
  t.deepEqual(config.split("\n").filter((line) => !line.startsWith("#")), [
    `coordinator: "${coordinator.url}"`,
    `token: "${token}"`,
    `name: "host-a"`,
    `address: "${address}"`,
    `state_dir: "${join(root, PATHS.stateDir)}"`,
    `nginx: "managed"`,
    `switch: "auto"`,
    "labels:",
    `  "role": "geoip"`,
    "",
  ]);

  const unit = readFileSync(join(root, PATHS.unit), "utf8").split("\n");
  for (const line of [
    `ExecStart=${join(root, PATHS.wrapper)} --config ${join(root, PATHS.config)}`,
    "User=root",
    "Restart=on-failure",
    "RestartPreventExitStatus=2 78",
    "KillMode=process",
    "Nice=-5",
    "OOMScoreAdjust=-500",
    "WantedBy=multi-user.target",
  ]) {
    t.true(unit.includes(line), `unit has ${line}`);
  }
  t.regex(readFileSync(join(root, "etc/passwd"), "utf8"), /^cutover:[^:]*:\d+:\d+:[^:]*:\/var\/lib\/cutover:\/usr\/sbin\/nologin$/m);

  // /run/cutover (where a system nginx binds cutover's control socket) exists now and after
  // every boot: /run is emptied, and nginx, which starts before the agent, needs it (issue 11, finding 7).
  t.is(readFileSync(join(root, PATHS.tmpfiles), "utf8").split("\n").filter((line) => line && !line.startsWith("#")).join("\n"), "d /run/cutover 0700 root root -");
  t.is(statSync(join(root, PATHS.tmpfiles)).mode & 0o777, 0o644);
  t.like(lstatSync(join(root, PATHS.runDir)), { uid: 0, gid: 0 });
  t.is(lstatSync(join(root, PATHS.runDir)).mode & 0o7777, 0o700);
  rmSync(join(root, PATHS.runDir), { recursive: true });
  const boot = await bootTmpfiles(root);
  t.is(boot.exitCode, 0, output(boot));
  t.true(lstatSync(join(root, PATHS.runDir)).isDirectory(), "systemd-tmpfiles makes it again at boot");
  t.is(lstatSync(join(root, PATHS.runDir)).mode & 0o7777, 0o700);
  t.regex(readFileSync(join(root, "etc/group"), "utf8"), /^cutover:/m);

  const before = snapshot(root, { exclude: AGENT_RUNTIME, mtimes: true });
  const second = await runInstaller(t, installArgs(root, coordinator, token, address));
  t.is(second.exitCode, 0, output(second));
  t.regex(second.stdout, /no changes: cutover-agent host-a is installed as asked and running/);
  t.notRegex(second.stdout, /\b(write|update|create|start|stop|remove) \//, "no action taken");
  t.deepEqual(snapshot(root, { exclude: AGENT_RUNTIME, mtimes: true }), before, "not a file rewritten");
  t.deepEqual(agentPids(root).map(parentPid), [pid], "the agent was not restarted");
});

test.serial("changed settings rewrite only the config and restart the agent, which comes back online with them; omitted flags keep their value", async (t) => {
  const { coordinator, root, address } = await installed(t);
  const oldPid = readPidFile(root);

  // Only what changes is passed: coordinator, token, name, address and nginx mode come from the last run.
  const pin = `sha256:${Array(32).fill("AB").join(":")}`;
  const result = await runInstaller(t, ["--root", root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath, "--labels", "zone=b,role=geoip", "--pin", pin, "--root-apps", "allow"]);
  t.is(result.exitCode, 0, output(result));
  const actions = result.stdout.split("\n").filter((line) => /^install\.sh: (write|update|create|set) /.test(line));
  t.deepEqual(actions, [`install.sh: update ${join(root, PATHS.config)} (mode 600)`]);
  t.regex(result.stdout, /stop the background agent/);
  t.regex(result.stdout, /the agent is online: .*to=online why=authenticated/);

  const newPid = readPidFile(root);
  t.not(newPid, oldPid);
  t.deepEqual(agentPids(root).map(parentPid), [newPid]);
  // A host does not relabel itself: the labels its agent now presents wait for an admin (issue 11, finding 2).
  const [host] = await hosts(coordinator);
  t.like(host, { name: "host-a", address, state: "online", labels: { role: "geoip" }, pendingLabels: { role: "geoip", zone: "b" } });
  const accepted = await coordinator.cli(["hosts", "accept", "host-a"]);
  t.is(accepted.exitCode, 0, accepted.stderr);
  t.like((await hosts(coordinator))[0], { labels: { role: "geoip", zone: "b" }, pendingLabels: null });
  const config = readFileSync(join(root, PATHS.config), "utf8");
  t.regex(config, /^labels:\n {2}"role": "geoip"\n {2}"zone": "b"\n/m, "labels sorted: the same set in another order is no change");
  // The pin is the agent's coordinator_fingerprint setting (checked only for https coordinators).
  t.true(config.split("\n").includes(`coordinator_fingerprint: "sha256:${"ab".repeat(32)}"`), config);
  t.regex(result.stdout, /note: --pin is recorded but not checked: http:\/\/127\.0\.0\.1:\d+ has no certificate/);
  t.true(config.split("\n").includes("allow_root_apps: true"), "--root-apps allow is the agent's allow_root_apps");
  t.regex(readFileSync(join(root, PATHS.agentLog), "utf8"), new RegExp(`agent: starting name=host-a .*rootApps=allow`));

  const again = await runInstaller(t, ["--root", root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath, "--labels", "role=geoip,zone=b"]);
  t.is(again.exitCode, 0, output(again));
  t.regex(again.stdout, /no changes/);
});

test.serial("--dry-run prints each action it would take and changes nothing, on a fresh host and on an installed one", async (t) => {
  const coordinator = await startCoordinator(t);
  const root = hostRoot(t);
  const address = loopback();
  const token = await coordinator.enrollmentToken();
  const before = snapshot(root, { mtimes: true });

  const fresh = await runInstaller(t, installArgs(root, coordinator, token, address, ["--dry-run"]));
  t.is(fresh.exitCode, 0, output(fresh));
  for (const action of [
    `would create system user cutover in ${join(root, "etc/passwd")}`,
    `would create ${join(root, "etc/cutover")} (mode 755, owner root:root)`,
    `would write ${join(root, PATHS.agentJs)} (mode 644)`,
    `would write ${join(root, PATHS.wrapper)} (mode 755)`,
    `would write ${join(root, PATHS.config)} (mode 600)`,
    `would write ${join(root, PATHS.unit)} (mode 644)`,
    `would create ${join(root, PATHS.runDir)} (mode 700, owner root:root)`,
    `would write ${join(root, PATHS.tmpfiles)} (mode 644)`,
    "would run systemctl enable cutover-agent.service (stubbed: --no-systemd)",
    `would start the agent in the background (pid file ${join(root, PATHS.pidFile)}`,
  ]) {
    t.true(fresh.stdout.includes(`install.sh: ${action}`), `says it ${action}`);
  }
  t.regex(fresh.stdout, /dry run: \d+ actions above would be taken; nothing was changed/);
  t.deepEqual(snapshot(root, { mtimes: true }), before, "the tree is untouched");
  t.deepEqual(await hosts(coordinator), [], "no agent ran");

  const install = await runInstaller(t, installArgs(root, coordinator, token, address));
  t.is(install.exitCode, 0, output(install));
  const installedTree = snapshot(root, { exclude: AGENT_RUNTIME, mtimes: true });
  const pid = readPidFile(root);
  const change = await runInstaller(t, ["--root", root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath, "--labels", "role=geoip,zone=c", "--dry-run"]);
  t.is(change.exitCode, 0, output(change));
  t.regex(change.stdout, new RegExp(`would update ${join(root, PATHS.config)}`));
  t.regex(change.stdout, /would stop the background agent/);
  t.deepEqual(snapshot(root, { exclude: AGENT_RUNTIME, mtimes: true }), installedTree);
  t.deepEqual(agentPids(root).map(parentPid), [pid], "the agent still runs, not restarted");

  const uninstall = await runInstaller(t, ["--root", root, "--no-systemd", "--uninstall", "--purge", "--dry-run"]);
  t.is(uninstall.exitCode, 0, output(uninstall));
  t.regex(uninstall.stdout, new RegExp(`would remove ${join(root, PATHS.dataDir)}\n`));
  t.deepEqual(snapshot(root, { exclude: AGENT_RUNTIME, mtimes: true }), installedTree);
  t.deepEqual(agentPids(root).map(parentPid), [pid]);
});

test.serial("--uninstall leaves no unit, user or file of ours but keeps the app data, which a reinstall uses without a token; --purge removes that too", async (t) => {
  const { coordinator, root, address, pristine } = await installed(t);
  const pid = readPidFile(root)!;

  const uninstall = await runInstaller(t, ["--root", root, "--no-systemd", "--uninstall"]);
  t.is(uninstall.exitCode, 0, output(uninstall));
  t.regex(uninstall.stdout, /done: cutover-agent is uninstalled/);
  t.deepEqual(agentPids(root), [], `the agent (pid ${pid}) is stopped`);
  const after = snapshot(root);
  t.deepEqual(without(after, PATHS.dataDir), pristine, "everything but the app data is as before the install");
  t.truthy(under(after, PATHS.dataDir)[`${PATHS.stateDir}/identity.json`], "the agent's key is kept");
  t.notRegex(readFileSync(join(root, "etc/passwd"), "utf8"), /^cutover:/m);
  t.notRegex(readFileSync(join(root, "etc/group"), "utf8"), /^cutover:/m);

  // The kept key lets the host back in without a token.
  const reinstall = await runInstaller(t, ["--root", root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath, "--coordinator", coordinator.url, "--name", "host-a", "--address", address, "--nginx", "managed"]);
  t.is(reinstall.exitCode, 0, output(reinstall));
  t.regex(reinstall.stdout, /to=online why=authenticated/);
  t.like((await hosts(coordinator))[0], { name: "host-a", state: "online" });

  const purge = await runInstaller(t, ["--root", root, "--no-systemd", "--uninstall", "--purge"]);
  t.is(purge.exitCode, 0, output(purge));
  t.deepEqual(agentPids(root), []);
  t.deepEqual(snapshot(root), pristine, "the tree is exactly as before the install");

  const nothing = await runInstaller(t, ["--root", root, "--no-systemd", "--uninstall"]);
  t.is(nothing.exitCode, 0, output(nothing));
  t.regex(nothing.stdout, /no changes: cutover-agent is not installed/);
});

test.serial("the installed agent deploys the sample app through its own nginx; --uninstall leaves it serving, --purge stops it", async (t) => {
  const { coordinator, root, address, pristine } = await installed(t);
  const ports = { listen: 8080, blue: 7001, green: 7002 };
  const spec = writeExampleSpec(tempDir(t, "cutover-install-spec-"), ports);
  const deploy = await coordinator.cli(["deploy", spec, "--release", "v1", "--json"]);
  t.is(deploy.exitCode, 0, `${deploy.stdout}\n${deploy.stderr}`);
  t.like(JSON.parse(deploy.stdout), { status: "succeeded", hosts: [{ name: "host-a", outcome: "succeeded", release: "v1" }] });
  t.like(await getThroughProxy(address, ports.listen), { status: 200, version: "v1" });
  const stateDir = join(root, PATHS.stateDir);
  const running = hostProcesses(stateDir);
  t.deepEqual(running.map((p) => p.kind).sort(), ["instance", "nginx"]);

  // The apps are not the agent's to take down: uninstalling it leaves them serving.
  const uninstall = await runInstaller(t, ["--root", root, "--no-systemd", "--uninstall"]);
  t.is(uninstall.exitCode, 0, output(uninstall));
  t.deepEqual(agentPids(root), []);
  t.deepEqual(hostProcesses(stateDir), running);
  t.like(await getThroughProxy(address, ports.listen), { status: 200, version: "v1" });

  const purge = await runInstaller(t, ["--root", root, "--no-systemd", "--uninstall", "--purge"]);
  t.is(purge.exitCode, 0, output(purge));
  t.regex(purge.stdout, /stop app process group \d+/);
  t.regex(purge.stdout, /stop the agent's nginx \(pid \d+\)/);
  for (const proc of running) {
    t.false(alive(proc.pid), `${proc.label} (pid ${proc.pid}) is stopped`);
  }
  await t.throwsAsync(getThroughProxy(address, ports.listen), { code: "ECONNREFUSED" });
  t.deepEqual(snapshot(root), pristine);
});

test.serial("a spent enrollment token: install.sh fails with the coordinator's reason, and the refused agent does not keep running", async (t) => {
  const { coordinator, token } = await installed(t);
  const root = hostRoot(t);
  const result = await runInstaller(t, [...installArgs(root, coordinator, token, loopback()).map((a) => (a === "host-a" ? "host-b" : a)), "--timeout", "20"]);
  t.is(result.exitCode, 1, output(result));
  t.regex(result.stderr, /error: the coordinator refused the agent: .*\(ENROLL_TOKEN_USED\)\. Then run install\.sh again \(a new --token/);
  t.deepEqual(agentPids(root), []);
  t.deepEqual((await hosts(coordinator)).map((h) => h.name), ["host-a"]);
});

interface BadCase {
  args: (ctx: { root: string; coordinator: CoordinatorProcess; token: string; port: number }) => string[];
  exitCode: number;
  error: RegExp;
  debian?: boolean;
  asUser?: number;
}

const refused = test.macro({
  async exec(t, bad: BadCase) {
    const coordinator = shared;
    const root = hostRoot(t, { debian: bad.debian });
    const token = await coordinator.enrollmentToken();
    const before = snapshot(root, { mtimes: true });
    const result = await runInstaller(t, bad.args({ root, coordinator, token, port: await closedPort() }), { asUser: bad.asUser });
    t.is(result.exitCode, bad.exitCode, output(result));
    t.regex(result.stderr, bad.error);
    t.deepEqual(snapshot(root, { mtimes: true }), before, "nothing written");
    t.deepEqual(await hosts(coordinator), [], "no agent came near the coordinator");
  },
  title: (title = "") => `install.sh refuses ${title} with a clear error and writes nothing`,
});

const base = (root: string) => ["--root", root, "--no-systemd", "--agent-file", bundle, "--node", process.execPath];

test("no --coordinator", refused, {
  args: ({ root, token }) => [...base(root), "--token", token],
  exitCode: 2,
  error: /--coordinator URL is required/,
});
test("an unreachable coordinator", refused, {
  args: ({ root, token, port }) => [...base(root), "--coordinator", `http://127.0.0.1:${port}`, "--token", token],
  exitCode: 1,
  error: /error: cannot reach the coordinator at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED/,
});
test("a first install without --token", refused, {
  args: ({ root, coordinator }) => [...base(root), "--coordinator", coordinator.url],
  exitCode: 2,
  error: /--token is required until the agent has enrolled: create one on the coordinator with `cutover token create`/,
});
test("an unknown flag", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token, "--colour", "blue"],
  exitCode: 2,
  error: /unknown argument "--colour"/,
});
test("a label without a value", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token, "--labels", "role"],
  exitCode: 2,
  error: /label "role" must be key=value/,
});
test("an nginx mode it does not know", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token, "--nginx", "apache"],
  exitCode: 2,
  error: /--nginx must be system or managed, got "apache"/,
});
test("a missing agent file", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token, "--agent-file", "/nonexistent/cutover-agent.mjs"],
  exitCode: 1,
  error: /no agent file at \/nonexistent\/cutover-agent\.mjs: pass --agent-file FILE/,
});
test("a pin that is not a SHA-256 fingerprint", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token, "--pin", "sha1:AB:CD"],
  exitCode: 2,
  error: /--pin "sha1:AB:CD" is not a SHA-256 fingerprint/,
});
test("a host that is not Debian or Ubuntu", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token],
  debian: false,
  exitCode: 1,
  error: /error: unsupported OS: install\.sh supports Debian and Ubuntu/,
});
test("to run as a user other than root", refused, {
  args: ({ root, coordinator, token }) => [...base(root), "--coordinator", coordinator.url, "--token", token],
  asUser: NOBODY,
  exitCode: 1,
  error: /error: must run as root/,
});
