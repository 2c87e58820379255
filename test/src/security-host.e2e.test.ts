// Issue 11, the host side: what whoever holds a deploy token (or a spec in a
// repo) can make an agent do on its host. Each test is an attack that worked
// before, now refused with the error an operator reads; real CLI, real
// coordinator, real agents and their nginx.
import test from "ava";
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { create } from "tar";
import { APP_USER, EXAMPLE_APP_DIR, writeExampleSpec } from "./harness/app-spec.js";
import { startAgent, startCoordinator, startFleet, type Fleet } from "./harness/fleet.js";
import { hostProcesses, nginxWorkerPids, processUids } from "./harness/host-processes.js";
import { tempDir } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };
const NOBODY_UID = 65534;
const ALLOW_ROOT = "allow root apps on this host with allow_root_apps: true in /etc/cutover/agent.yaml (or the flag --allow-root-apps)";

interface DeployJson {
  status: string;
  hosts: { name: string; outcome: string; release: string | null; error: string | null }[];
}

async function deploy(fleet: Pick<Fleet, "coordinator">, spec: string, release: string): Promise<{ exitCode: number | null; json: DeployJson; output: string }> {
  const { exitCode, json, stdout, stderr } = await fleet.coordinator.cliJson<DeployJson>(["deploy", spec, "--release", release]);
  return { exitCode, json, output: `exit ${exitCode}\n${stdout}\n${stderr}` };
}

/** What a deploy leaves on a host; empty when the agent refused before changing anything. */
function hostChanges(stateDir: string): string[] {
  return [
    ...["releases/geoip", "apps/geoip", "instances/geoip", "nginx/sites/geoip.conf"].filter((path) => existsSync(join(stateDir, path))),
    ...hostProcesses(stateDir).map((p) => p.label),
  ];
}

test.serial("a spec without run.user, or with run.user root, is refused by a root agent before anything changes on the host; an agent started with --allow-root-apps runs it as root", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const stateDir = fleet.agents[0]!.options.stateDir;

  const noUser = await deploy(fleet, writeExampleSpec(fleet.dir, { ...PORTS, user: null }, "no-user.yml"), "v1");
  t.is(noUser.exitCode, 1, noUser.output);
  t.is(noUser.json.hosts[0]!.outcome, "failed");
  t.true(
    noUser.json.hosts[0]!.error!.includes(
      `apps run as root only where the agent allows it: the spec sets no run.user, so the app would run as the agent's user, root. Set run.user to an unprivileged account (e.g. cutover or nobody), or ${ALLOW_ROOT}`,
    ),
    noUser.output,
  );
  t.regex(noUser.json.hosts[0]!.error!, /ERR_ROOT_APP_REFUSED/);

  const asRoot = await deploy(fleet, writeExampleSpec(fleet.dir, { ...PORTS, user: "root" }, "root.yml"), "v1");
  t.is(asRoot.exitCode, 1, asRoot.output);
  t.true(asRoot.json.hosts[0]!.error!.includes(`run.user "root" is uid 0 on this host. Set run.user`), asRoot.output);
  t.deepEqual(hostChanges(stateDir), [], "no release unpacked, no app state, no instance, no nginx");

  // The same spec on a host whose operator opted in.
  const address = fleet.addresses[0]!.replace(/\.\d+$/, ".41");
  const rootHost = await startAgent(t, fleet.coordinator, {
    name: "root-ok",
    address,
    labels: "role=root-ok",
    token: await fleet.coordinator.enrollmentToken({ labels: "role=root-ok", address }),
    extraArgs: ["--allow-root-apps"],
  });
  await rootHost.online();
  const allowed = await deploy(fleet, writeExampleSpec(fleet.dir, { ...PORTS, user: null, selector: { role: "root-ok" } }, "opted-in.yml"), "v1");
  t.is(allowed.exitCode, 0, allowed.output);
  const instance = hostProcesses(rootHost.options.stateDir).find((p) => p.kind === "instance")!;
  t.deepEqual(processUids(instance.pid), [0, 0, 0, 0], "root, because this host allows it");
});

test.serial("a spec with access_by_lua is refused by cutover check, cutover deploy and the coordinator's API (a deploy token without the CLI); nothing reaches the host", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const pwned = join(fleet.dir, "pwned");
  const lua = `access_by_lua 'os.execute("id > ${pwned}")'`;
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, directives: ["client_max_body_size 10m", lua] }, "lua.yml");
  const issue = `proxy.directives[1]: expected one allowed nginx directive with plain arguments, like "client_max_body_size 10m", got ${JSON.stringify(lua)}: "access_by_lua" is not an allowed directive (the list is in packages/spec/README.md)`;

  const check = await fleet.coordinator.cli(["check", spec]);
  t.is(check.exitCode, 64, "bad input: the spec, found before anything was sent");
  t.true(check.stderr.includes(issue), check.stderr);
  const cli = await fleet.coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(cli.exitCode, 64, "bad input: the spec, found before anything was sent");
  t.regex(cli.stderr, /the app spec is invalid; nothing was deployed/);
  t.true(cli.stderr.includes(issue), cli.stderr);

  // Whoever holds a deploy token need not use the CLI: the coordinator checks the spec itself.
  const token = await fleet.coordinator.cli(["token", "create", "--role", "deploy", "--name", "ci"]);
  t.is(token.exitCode, 0, token.stderr);
  const text = readFileSync(spec, "utf8").replace(/^artifact: .*\n/m, "");
  const response = await fetch(`${fleet.coordinator.url}/v1/deployments`, {
    method: "POST",
    headers: { authorization: `Bearer ${token.stdout.trim()}`, "content-type": "application/json" },
    body: JSON.stringify({ spec: text, specFile: "lua.yml", release: "v1" }),
  });
  const body = (await response.json()) as { error: { code: string; message: string } };
  t.is(response.status, 400);
  t.is(body.error.code, "ERR_SPEC_INVALID");
  t.true(body.error.message.includes(issue.replace("proxy.directives", "lua.yml: proxy.directives")), body.error.message);

  t.deepEqual(hostChanges(fleet.agents[0]!.options.stateDir), []);
  t.false(existsSync(pwned));
});

/** A POST through the proxy with a body nginx must buffer to a temp file (over client_body_buffer_size). */
function postThroughProxy(address: string, port: number, bytes: number): Promise<{ status: number; version: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path: "/upload", method: "POST", agent: false, timeout: 10_000, headers: { "content-length": bytes } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, version: res.headers["x-app-version"] as string | undefined }));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end(Buffer.alloc(bytes, "x"));
  });
}

test.serial("the managed nginx's workers run unprivileged and the app as its run.user, and a request body nginx buffers to disk still goes through; agent.log is 0600", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const stateDir = fleet.agents[0]!.options.stateDir;
  const v1 = await deploy(fleet, writeExampleSpec(fleet.dir, PORTS), "v1");
  t.is(v1.exitCode, 0, v1.output);

  t.is(statSync(join(stateDir, "nginx")).mode & 0o777, 0o710, "the managed nginx's prefix: root's, passable only by its workers' group");
  const workers = nginxWorkerPids(stateDir);
  t.true(workers.length > 0, "nginx has workers");
  for (const pid of workers) {
    const uids = processUids(pid);
    t.false(uids.includes(0), `worker ${pid} runs as uid ${uids.join("/")}, not root`);
  }
  const instance = hostProcesses(stateDir).find((p) => p.kind === "instance")!;
  t.deepEqual(processUids(instance.pid), [NOBODY_UID, NOBODY_UID, NOBODY_UID, NOBODY_UID], `the app runs as run.user ${APP_USER}`);

  // 512 KiB is over client_body_buffer_size: the worker writes it under STATE/nginx/tmp, as its own user.
  const post = await postThroughProxy(fleet.addresses[0]!, PORTS.listen, 512 * 1024);
  t.like(post, { status: 404, version: "v1" }, "the app answered: nginx buffered the body and passed it on");
  const errorLog = readFileSync(join(stateDir, "nginx", "error.log"), "utf8");
  t.regex(errorLog, /a client request body is buffered to a temporary file/);
  t.notRegex(errorLog, /Permission denied/);
  t.like(await getThroughProxy(fleet.addresses[0]!, PORTS.listen), { status: 200, version: "v1" });

  t.is(statSync(join(stateDir, "logs", "agent.log")).mode & 0o777, 0o600, "agent.log is the agent's alone (finding 8)");
});

test.serial("a tarball with a setuid 0777 file and a world-writable dir unpacks with neither, and a release dir planted under the release's name is replaced by the artifact", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const stateDir = fleet.agents[0]!.options.stateDir;
  const work = join(fleet.dir, "build");
  mkdirSync(join(work, "cache"), { recursive: true });
  copyFileSync(join(EXAMPLE_APP_DIR, "server.mjs"), join(work, "server.mjs"));
  writeFileSync(join(work, "tool"), "#!/bin/sh\nid\n");
  chmodSync(join(work, "tool"), 0o4777);
  chmodSync(join(work, "cache"), 0o1777);
  const tarball = join(fleet.dir, "release.tar.gz");
  await create({ gzip: true, file: tarball, cwd: work, portable: false }, ["server.mjs", "tool", "cache"]);
  const spec = writeExampleSpec(fleet.dir, PORTS, "tarball.yml");
  writeFileSync(spec, readFileSync(spec, "utf8").replace(/^artifact: .*$/m, `artifact: ${tarball}`));

  // Someone with a way into the state dir leaves a v1 of their own, claiming another artifact.
  const planted = join(stateDir, "releases", "geoip", "v1");
  mkdirSync(planted, { recursive: true });
  writeFileSync(join(planted, "server.mjs"), "process.exit(1)\n");
  writeFileSync(join(planted, ".cutover-sha256"), `${"0".repeat(64)}\n`);

  const v1 = await deploy(fleet, spec, "v1");
  t.is(v1.exitCode, 0, v1.output);
  t.like(await getThroughProxy(fleet.addresses[0]!, PORTS.listen), { status: 200, version: "v1" });
  t.deepEqual(readFileSync(join(planted, "server.mjs")), readFileSync(join(EXAMPLE_APP_DIR, "server.mjs")), "the planted server.mjs is gone");
  t.is(lstatSync(join(planted, "tool")).mode & 0o7777, 0o755, "no setuid bit, no group/other write");
  t.is(lstatSync(join(planted, "cache")).mode & 0o7777, 0o755, "no sticky bit, no world write");
});

test.serial("an agent whose control socket dir is world-writable or a symlink refuses to start, naming the dir and the fix; once fixed it starts", async (t) => {
  const coordinator = await startCoordinator(t);
  const address = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.11`;
  // In managed mode the control socket is STATE/nginx/control.sock; in system mode it is under /run/cutover/.
  const refusedAt = async (name: string, prepare: (socketDir: string) => void) => {
    const stateDir = join(tempDir(t, "cutover-agent-"), "state");
    mkdirSync(stateDir);
    const socketDir = join(stateDir, "nginx");
    prepare(socketDir);
    const agent = await startAgent(t, coordinator, { name, address, labels: "role=geoip", stateDir, token: await coordinator.enrollmentToken() });
    // An agent that does not check would come online instead of exiting.
    const exit = await Promise.race([agent.process.exited, agent.online().then(() => ({ code: "online" }))]);
    t.is(exit.code, 78, "the config exit code: systemd does not restart it in a loop");
    return { agent, socketDir, said: (why: string) => agent.process.lines.includes(`cutover-agent: the control socket's directory ${socketDir} is not safe: ${why}. The agent does not start until it is`) };
  };

  const writable = await refusedAt("host-a", (dir) => {
    mkdirSync(dir);
    chmodSync(dir, 0o777);
  });
  t.true(writable.said(`its mode is 0777, writable by group or others; chmod go-w ${writable.socketDir}`), writable.agent.process.lines.slice(-5).join("\n"));

  const linked = await refusedAt("host-b", (dir) => {
    const elsewhere = join(tempDir(t, "cutover-elsewhere-"), "nginx");
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, dir);
  });
  t.true(linked.said("it is a symlink; make it a directory of its own"), linked.agent.process.lines.slice(-5).join("\n"));

  // The operator runs the fix the message names; the refused agent never reached the coordinator, so its token still works.
  chmodSync(writable.socketDir, 0o755);
  writable.agent.start();
  await writable.agent.online();
});
