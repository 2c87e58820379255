// Spec hooks with a real coordinator, real agents and nginx, driven by the real CLI: what an operator sees.
import test from "ava";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSignedCommand, type cutover } from "@cutover/protocol";
import { parse, stringify } from "yaml";
import { EXAMPLE_APP_DIR, writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { tempDir } from "./harness/processes.js";
import { newKey, RawAgent } from "./harness/raw-agent.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const LISTEN = 8080;
const PORTS = { listen: LISTEN, blue: 7001, green: 7002 };
/** Where run.user `nobody` lives in the test machine's /etc/passwd. */
const NOBODY_UID = Number(/^nobody:[^:]*:(\d+):/m.exec(readFileSync("/etc/passwd", "utf8"))?.[1]);

/**
 * The hook shipped in the release: appends one line per run to the log the test
 * owns — hook, release, host address, COLOR, PORT, uid, whether it ran in its
 * release's directory, ok/fail, the start of DB_PASSWORD's sha256 — prints a marker, sleeps with --sleep-on ADDRESS
 * SECONDS on that host, and fails (exit 3, a message on stderr) with --fail, or
 * --fail-on ADDRESS on that host.
 */
const HOOK_SCRIPT = `import { createHash } from "node:crypto";
import { appendFileSync } from "node:fs";
import { basename } from "node:path";
const [log, hook, release, address, ...rest] = process.argv.slice(2);
const failOn = rest.indexOf("--fail-on");
const fail = rest.includes("--fail") || (failOn >= 0 && rest[failOn + 1] === address);
const inRelease = basename(process.cwd()) === release ? "release-dir" : process.cwd();
const secret = process.env.DB_PASSWORD ? createHash("sha256").update(process.env.DB_PASSWORD).digest("hex").slice(0, 12) : "-";
appendFileSync(log, [hook, release, address, process.env.COLOR ?? "-", process.env.PORT ?? "-", process.getuid(), inRelease, fail ? "fail" : "ok", secret].join(" ") + "\\n");
console.log("hook-marker " + hook + " " + release + " on " + address);
const sleepOn = rest.indexOf("--sleep-on");
if (sleepOn >= 0 && rest[sleepOn + 1] === address) await new Promise((resolve) => setTimeout(resolve, Number(rest[sleepOn + 2]) * 1000));
if (fail) {
  console.error('migration 0042 failed: relation "users" is locked');
  process.exit(3);
}
`;

interface DeployJson {
  id: string;
  status: string;
  error: string | null;
  hosts: { name: string; outcome: string; liveColor: string | null; release: string | null; error: string | null }[];
}

interface Setup {
  fleet: Fleet;
  /** The hooks' log, in a directory the app user may write. */
  log: string;
  /** Writes a spec of the sample app shipped with hook.mjs, with these hooks (argv after `node hook.mjs LOG`). */
  spec(file: string, hooks: Record<string, { args: string[]; timeout?: string }>, options?: { strategy?: Record<string, unknown>; env?: Record<string, unknown> }): string;
}

async function setup(t: Parameters<typeof startFleet>[0]): Promise<Setup> {
  const fleet = await startFleet(t, { hosts: 3 });
  const artifact = tempDir(t, "cutover-hooks-artifact-");
  copyFileSync(join(EXAMPLE_APP_DIR, "server.mjs"), join(artifact, "server.mjs"));
  writeFileSync(join(artifact, "hook.mjs"), HOOK_SCRIPT);
  chmodSync(artifact, 0o755);
  const logDir = tempDir(t, "cutover-hooks-log-");
  chmodSync(logDir, 0o777);
  const log = join(logDir, "hooks.log");
  return {
    fleet,
    log,
    spec(file, hooks, options = {}) {
      const path = writeExampleSpec(fleet.dir, { ...PORTS, ...(options.strategy && { strategy: options.strategy }) }, file);
      const spec = parse(readFileSync(path, "utf8")) as { artifact: string; hooks: unknown; run: Record<string, unknown> };
      spec.artifact = artifact;
      if (options.env) spec.run.env = options.env;
      spec.hooks = Object.fromEntries(Object.entries(hooks).map(([name, hook]) => [name, { command: ["node", "hook.mjs", log, ...hook.args], ...(hook.timeout && { timeout: hook.timeout }) }]));
      writeFileSync(path, stringify(spec));
      return path;
    },
  };
}

const hookRuns = (log: string): string[] => (existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : []);

async function versionsThroughProxies(fleet: Fleet): Promise<(string | undefined)[]> {
  return Promise.all(fleet.addresses.map(async (a) => (await getThroughProxy(a, LISTEN)).version));
}

/** Every event of a finished deployment, as `GET /v1/deployments/:id/events` streams them. */
async function eventsOf(fleet: Fleet, id: string): Promise<{ id: number; hostName: string | null; kind: string; message: string }[]> {
  const response = await fetch(`${fleet.coordinator.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${fleet.coordinator.adminToken}` } });
  const text = await response.text();
  return [...text.matchAll(/^event: progress\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!));
}

test.serial("a failing pre_deploy hook aborts before any switch, its output shown by the CLI; every host keeps serving v1", async (t) => {
  const { fleet, log, spec } = await setup(t);
  const [web1] = fleet.addresses;
  const v1 = await fleet.coordinator.cliJson<DeployJson>(["deploy", spec("v1.yml", {}), "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1", "v1"]);

  const failing = spec("failing.yml", { pre_deploy: { args: ["pre_deploy", "${RELEASE}", "${ADDRESS}", "--fail"], timeout: "30s" } });
  const deploy = await fleet.coordinator.cli(["deploy", failing, "--release", "v2"]);
  t.log(deploy.stdout, deploy.stderr);
  t.is(deploy.exitCode, 1);
  // What the operator reads: the hook's own output as it ran, and the reason the deploy ended.
  t.regex(deploy.stdout, new RegExp(`web-1 +hook-marker pre_deploy v2 on ${web1!.replaceAll(".", "\\.")}`));
  t.regex(deploy.stdout, /web-1 +migration 0042 failed: relation "users" is locked/);
  t.regex(deploy.stderr, /pre_deploy hook failed on web-1: the pre_deploy hook exited with code 3 .*\(ERR_HOOK_FAILED\); its last output: .*migration 0042 failed: relation "users" is locked.*; no host was switched/);

  t.deepEqual(await versionsThroughProxies(fleet), ["v1", "v1", "v1"], "no host switched");
  t.deepEqual(hookRuns(log), [`pre_deploy v2 ${web1} - - ${NOBODY_UID} release-dir fail -`], "ran once, on web-1, as nobody, in the new release's directory");
  const history = await fleet.coordinator.cliJson<{ id: string; release: string; state: string }[]>(["history", "geoip"]);
  t.deepEqual(history.json.map((d) => [d.release, d.state]), [
    ["v2", "failed"],
    ["v1", "succeeded"],
  ]);
  const record = await fleet.coordinator.cliJson<{ hosts: { name: string; outcome: string }[] }>(["status", "geoip", "--follow"]);
  t.deepEqual(record.json.hosts.map((h) => [h.name, h.outcome]), [
    ["web-1", "skipped"],
    ["web-2", "skipped"],
    ["web-3", "skipped"],
  ]);
  const events = await eventsOf(fleet, history.json[0]!.id);
  t.false(events.some((e) => e.kind === "step"), "no host was sent a Deploy");
  t.true(events.some((e) => e.kind === "hook.output" && e.hostName === "web-1" && e.message === 'migration 0042 failed: relation "users" is locked'), "the output is kept in the events");
});

test.serial("a passing pre_deploy runs exactly once per deploy across 3 hosts, before any switch; post_switch once per host; a failing post_switch switches its host back; an agent without hooks is refused up front", async (t) => {
  const { fleet, log, spec } = await setup(t);
  const [web1, web2, web3] = fleet.addresses as [string, string, string];
  t.is((await fleet.coordinator.cli(["deploy", spec("v1.yml", {}), "--release", "v1"])).exitCode, 0);

  // The hooks get the app's environment, its secrets included.
  const secretFile = join(fleet.dir, "db-password");
  writeFileSync(secretFile, "correct horse battery staple");
  const set = await fleet.coordinator.cli(["secret", "set", "geoip", "DB_PASSWORD", "--file", secretFile]);
  t.is(set.exitCode, 0, set.stderr);
  const secretSha = createHash("sha256").update("correct horse battery staple").digest("hex").slice(0, 12);
  const hooked = spec(
    "hooked.yml",
    {
      pre_deploy: { args: ["pre_deploy", "${RELEASE}", "${ADDRESS}"] },
      post_switch: { args: ["post_switch", "${RELEASE}", "${ADDRESS}"], timeout: "20s" },
    },
    { env: { DB_PASSWORD: { secret: "DB_PASSWORD" } } },
  );
  const v2 = await fleet.coordinator.cliJson<DeployJson>(["deploy", hooked, "--release", "v2"]);
  t.is(v2.exitCode, 0, `${v2.stderr}\n${JSON.stringify(v2.json.hosts)}`);
  t.deepEqual(v2.json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release]), [
    ["web-1", "succeeded", "green", "v2"],
    ["web-2", "succeeded", "green", "v2"],
    ["web-3", "succeeded", "green", "v2"],
  ]);
  t.deepEqual(await versionsThroughProxies(fleet), ["v2", "v2", "v2"]);
  t.deepEqual(hookRuns(log), [
    `pre_deploy v2 ${web1} - - ${NOBODY_UID} release-dir ok ${secretSha}`,
    `post_switch v2 ${web1} green 7002 ${NOBODY_UID} release-dir ok ${secretSha}`,
    `post_switch v2 ${web2} green 7002 ${NOBODY_UID} release-dir ok ${secretSha}`,
    `post_switch v2 ${web3} green 7002 ${NOBODY_UID} release-dir ok ${secretSha}`,
  ]);
  const events = await eventsOf(fleet, v2.json.id);
  const markers = events.filter((e) => e.kind === "hook.output").map((e) => [e.hostName, e.message]);
  t.deepEqual(markers, [
    ["web-1", `hook-marker pre_deploy v2 on ${web1}`],
    ["web-1", `hook-marker post_switch v2 on ${web1}`],
    ["web-2", `hook-marker post_switch v2 on ${web2}`],
    ["web-3", `hook-marker post_switch v2 on ${web3}`],
  ]);
  const passed = events.find((e) => e.kind === "hook.passed");
  const firstSwitch = events.find((e) => e.kind === "step" && /nginx switched/.test(e.message));
  t.truthy(passed && firstSwitch);
  t.true(passed!.id < firstSwitch!.id, "pre_deploy passed before any host switched");

  // v3 with a post_switch that fails on web-2 only; one failure allowed: web-2 is switched back, the others keep v3.
  const flaky = spec("flaky.yml", { post_switch: { args: ["post_switch", "${RELEASE}", "${ADDRESS}", "--fail-on", web2] } }, { strategy: { max_failures: 1 } });
  const v3 = await fleet.coordinator.cliJson<DeployJson>(["deploy", flaky, "--release", "v3"]);
  t.is(v3.exitCode, 1);
  t.is(v3.json.status, "failed");
  t.deepEqual(v3.json.hosts.map((h) => [h.name, h.outcome, h.release]), [
    ["web-1", "succeeded", "v3"],
    ["web-2", "failed", "v2"],
    ["web-3", "succeeded", "v3"],
  ]);
  t.regex(v3.json.hosts[1]!.error ?? "", /^post_switch hook failed: the post_switch hook exited with code 3 .*\(ERR_HOOK_FAILED\); its last output: .*relation "users" is locked; switched back to v2$/);
  t.deepEqual(await versionsThroughProxies(fleet), ["v3", "v2", "v3"]);
  t.is(hookRuns(log).filter((line) => line.startsWith("post_switch v3")).length, 3);

  // An agent that cannot run hooks joins the app's hosts: a spec with hooks is refused before anything changes.
  const old = await RawAgent.connect(fleet.coordinator.url);
  t.teardown(() => old.close());
  old.answerPings();
  const welcome = await old.handshake({
    name: "web-old",
    key: newKey(),
    token: await fleet.coordinator.enrollmentToken({ labels: "role=geoip", address: "127.0.0.99" }),
    agentVersion: "0.0.9",
    capabilities: ["ping", "deploy.bluegreen"],
    resources: { memTotalBytes: 8 * 2 ** 30, memAvailableBytes: 4 * 2 ** 30, cpuCount: 2, disks: [{ path: "/", freeBytes: 2 ** 40, totalBytes: 2 ** 40 }] },
  });
  t.is(welcome.body, "welcome");
  const runsBefore = hookRuns(log).length;
  const refused = await fleet.coordinator.cli(["deploy", hooked, "--release", "v4"]);
  t.is(refused.exitCode, 65, refused.stderr);
  t.regex(refused.stderr, /ERR_AGENT_UNSUPPORTED|the agents of web-old \(agent 0\.0\.9\) cannot run \(no "hooks" capability\)/);
  t.regex(refused.stderr, /web-old \(agent 0\.0\.9\)/);
  t.is(hookRuns(log).length, runsBefore, "no hook ran");
  t.deepEqual(await versionsThroughProxies(fleet), ["v3", "v2", "v3"]);
  const history = await fleet.coordinator.cliJson<{ release: string }[]>(["history", "geoip"]);
  t.deepEqual(history.json.map((d) => d.release), ["v3", "v2", "v1"], "nothing was recorded");
  const operations = old.received.filter((e) => e.body === "command").map((e) => openSignedCommand(e.command as cutover.v1.Command).operation);
  t.true(operations.every((operation) => operation === "ping"), `nothing but pings reached the old agent: ${operations.join(", ")}`);
});

test.serial("a coordinator restarted mid-deploy resumes it without running a passed pre_deploy again, nor a post_switch that was running", async (t) => {
  const { fleet, log, spec } = await setup(t);
  const [web1] = fleet.addresses as [string, string, string];
  t.is((await fleet.coordinator.cli(["deploy", spec("v1.yml", {}), "--release", "v1"])).exitCode, 0);
  const hooked = spec("hooked.yml", {
    pre_deploy: { args: ["pre_deploy", "${RELEASE}", "${ADDRESS}"] },
    // web-1's post_switch takes 6 s: the coordinator is killed while it runs.
    post_switch: { args: ["post_switch", "${RELEASE}", "${ADDRESS}", "--sleep-on", web1, "6"], timeout: "30s" },
  });
  const started = await fleet.coordinator.cliJson<{ id: string }>(["deploy", hooked, "--release", "v2", "--detach"]);
  t.is(started.exitCode, 0, started.stderr);
  const deadline = Date.now() + 30_000;
  while (!hookRuns(log).some((line) => line.startsWith(`post_switch v2 ${web1}`))) {
    if (Date.now() > deadline) return t.fail(`web-1's post_switch never started: ${hookRuns(log).join("; ")}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await fleet.coordinator.restart("SIGKILL");

  const followed = await fleet.coordinator.cliJson<DeployJson>(["status", "geoip", "--follow"]);
  t.is(followed.json.status, "succeeded", `${followed.stderr}\n${JSON.stringify(followed.json.hosts)}`);
  t.deepEqual(await versionsThroughProxies(fleet), ["v2", "v2", "v2"]);
  const runs = hookRuns(log);
  t.is(runs.filter((line) => line.startsWith("pre_deploy v2")).length, 1, runs.join("\n"));
  t.deepEqual(runs.filter((line) => line.startsWith("post_switch v2")).map((line) => line.split(" ")[2]), fleet.addresses, "post_switch once per host, web-1's not again");
  const events = await eventsOf(fleet, started.json.id);
  t.true(events.some((e) => e.message === "pre_deploy hook passed before the coordinator restarted: not run again"));
});
