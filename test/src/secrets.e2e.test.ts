// Secrets end to end: set through the CLI, stored sealed on the coordinator,
// referenced from the spec, delivered only to the app's hosts inside the signed
// Deploy, and found in the app's environment — and nowhere else an operator,
// a log reader or someone with a copy of the data dir or a state dir could look.
import test from "ava";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { writeExampleSpec } from "./harness/app-spec.js";
import { jsonError } from "./harness/cli-error.js";
import { startFleet, type AuditRow, type CoordinatorProcess } from "./harness/fleet.js";
import { CUTOVER_BIN, type CliResult } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };
const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

interface SecretJson {
  app: string;
  name: string;
  setAt: string;
  setBy: string;
}

/** The real CLI with `input` on its stdin, as `printf %s "$PW" | cutover secret set ...` runs it. */
async function cliWithStdin(coordinator: CoordinatorProcess, args: string[], input: string, token = coordinator.adminToken): Promise<CliResult> {
  const child = spawn(process.execPath, [CUTOVER_BIN, ...args], {
    env: { ...process.env, CUTOVER_URL: coordinator.url, CUTOVER_TOKEN: token, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d));
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  child.stdin.end(input);
  const [exitCode] = (await once(child, "close")) as [number | null];
  return { exitCode, stdout, stderr };
}

/** Every regular file under `dir` (sockets, fifos and symlinks left out), recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((name) => join(dir, name))
    .filter((path) => lstatSync(path).isFile());
}

/** The sample app's spec with run.env and run.env_file added: what an operator writes. */
function writeSecretSpec(dir: string, envFile: string): string {
  const path = writeExampleSpec(dir, { ...PORTS, appArgs: ["--env-hash", "DATABASE_URL,GEOIP_DB,NODE_ENV"] });
  const spec = parse(readFileSync(path, "utf8")) as { run: Record<string, unknown> };
  spec.run.env = { DATABASE_URL: { secret: "DATABASE_URL" }, NODE_ENV: "production" };
  spec.run.env_file = envFile;
  writeFileSync(path, stringify(spec));
  return path;
}

async function envHashes(address: string): Promise<Record<string, string | null>> {
  const response = await fetch(`http://${address}:${PORTS.listen}/env-sha256`);
  return (await response.json()) as Record<string, string | null>;
}

test.serial("a secret reaches the app's environment on its hosts only, and its bytes appear in no spec, API read, audit, event, log, state file or store file", async (t) => {
  const fleet = await startFleet(t, { hosts: 2, labels: (i) => (i === 0 ? "role=geoip" : "role=other") });
  const { coordinator } = fleet;
  const [appAgent, otherAgent] = fleet.agents as [(typeof fleet.agents)[0], (typeof fleet.agents)[0]];
  const address = fleet.addresses[0]!;
  const ops = await coordinator.apiToken("deploy", "ops");
  const reader = await coordinator.apiToken("read", "dashboard");

  const secret = `postgres://geoip:${randomBytes(12).toString("hex")}@db.internal:5432/geoip`;
  const rotated = `postgres://geoip:${randomBytes(12).toString("hex")}@db.internal:5432/geoip`;
  const hostValue = `/var/lib/geoip-${randomBytes(6).toString("hex")}.mmdb`;
  // What lives on the host: the agent reads it at each start.
  const envFile = join(fleet.dir, "geoip.env");
  writeFileSync(envFile, `# on the host\nGEOIP_DB=${hostValue}\n`, { mode: 0o640 });
  const spec = writeSecretSpec(fleet.dir, envFile);
  const reads: [string, string][] = [["spec file", readFileSync(spec, "utf8")]];
  const keep = (what: string, result: CliResult) => reads.push([`${what} stdout`, result.stdout], [`${what} stderr`, result.stderr]);

  // A deploy referencing a secret that is not set is refused before anything is saved or sent.
  const unset = await coordinator.cli(["deploy", spec, "--release", "v1", "--json"]);
  t.is(unset.exitCode, 65, "refused");
  t.deepEqual(jsonError(unset), {
    code: "ERR_SECRET_UNKNOWN",
    message: "run.env references the secret DATABASE_URL, which geoip does not have; nothing was deployed (`cutover secret set geoip DATABASE_URL` sets it; `cutover secret list geoip` shows the names set) (ERR_SECRET_UNKNOWN)",
  });
  t.deepEqual((await coordinator.cliJson<unknown[]>(["history", "geoip"])).json, [], "no deployment recorded");
  t.is((await coordinator.cli(["status", "geoip"])).exitCode, 65, "the app's spec was not saved: geoip is still unknown");
  t.deepEqual(filesUnder(join(appAgent.options.stateDir, "instances")), [], "nothing started on the host");

  // Setting one: a deploy token, an env var name, a value that is not empty.
  const denied = await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL"], secret, reader);
  t.is(denied.exitCode, 77, "a read token cannot set a secret");
  const badName = await cliWithStdin(coordinator, ["secret", "set", "geoip", "database-url"], secret, ops);
  t.is(badName.exitCode, 64);
  t.regex(badName.stderr, /"database-url" is not a secret name: letters, digits and '_', not starting with a digit/);
  const empty = await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL"], "\n", ops);
  t.is(empty.exitCode, 64);
  t.regex(empty.stderr, /the value from stdin is empty; nothing was set/);
  const set = await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL", "--json"], `${secret}\n`, ops);
  t.is(set.exitCode, 0, set.stderr);
  t.like(JSON.parse(set.stdout) as SecretJson, { app: "geoip", name: "DATABASE_URL", setBy: "ops" });
  keep("secret set", set);

  // A read token lists names and when they were set; never a value.
  const listed = await coordinator.cli(["secret", "list", "geoip", "--json"], reader);
  t.is(listed.exitCode, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as SecretJson[]).map((s) => [s.name, s.setBy]), [["DATABASE_URL", "ops"]]);
  keep("secret list --json", listed);
  const table = await coordinator.cli(["secret", "list", "geoip"], reader);
  t.regex(table.stdout, /^NAME\s+SET AT\s+SET BY\nDATABASE_URL\s+\S+\s+ops$/m);
  keep("secret list", table);

  const v1 = await coordinator.cli(["deploy", spec, "--release", "v1", "--json"], ops);
  t.is(v1.exitCode, 0, v1.stderr);
  keep("deploy v1", v1);
  t.is((JSON.parse(v1.stdout) as { status: string }).status, "succeeded");
  t.deepEqual(await envHashes(address), { DATABASE_URL: sha256(secret), GEOIP_DB: sha256(hostValue), NODE_ENV: sha256("production") }, "the app got the secret, the host's env file and the plain env");

  // The kernel's copy of the app's environment holds it: that is the one place it should be.
  const record = JSON.parse(readFileSync(join(appAgent.options.stateDir, "instances", "geoip", "blue.json"), "utf8")) as { pid: number };
  const environ = readFileSync(`/proc/${record.pid}/environ`, "utf8").split("\0");
  t.true(environ.includes(`DATABASE_URL=${secret}`));
  t.true(environ.includes(`GEOIP_DB=${hostValue}`));

  // Rotating it: set again, deploy, the new release has the new value.
  const again = await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL"], rotated, ops);
  t.is(again.exitCode, 0, again.stderr);
  t.regex(again.stdout, /^geoip: secret DATABASE_URL set by ops at \S+; deploy to deliver it$/m);
  keep("secret set again", again);
  const v2 = await coordinator.cli(["deploy", spec, "--release", "v2"], ops);
  t.is(v2.exitCode, 0, v2.stderr);
  keep("deploy v2", v2);
  t.is((await envHashes(address)).DATABASE_URL, sha256(rotated));

  // The plan compares specs by their references, and refuses one naming a secret that is not set.
  const renamed = parse(readFileSync(spec, "utf8")) as { run: { env: Record<string, unknown> } };
  renamed.run.env.DATABASE_URL = { secret: "DATABASE_URL_V2" };
  const renamedSpec = join(fleet.dir, "renamed.yml");
  writeFileSync(renamedSpec, stringify(renamed));
  const plan = await coordinator.cli(["deploy", renamedSpec, "--release", "v3", "--plan", "--json"], reader);
  t.is(plan.exitCode, 1, "a plan that would be refused");
  keep("deploy --plan", plan);
  const planned = JSON.parse(plan.stdout) as { specChanges: { field: string; from: unknown; to: unknown }[]; refusals: { code: string; message: string }[] };
  t.deepEqual(planned.specChanges, [{ field: "run.env.DATABASE_URL.secret", from: "DATABASE_URL", to: "DATABASE_URL_V2" }]);
  t.deepEqual(planned.refusals.map((r) => r.code), ["ERR_SECRET_UNKNOWN"]);

  // Removed: the next deploy is refused naming it; what runs keeps running.
  const removed = await coordinator.cli(["secret", "rm", "geoip", "DATABASE_URL"], ops);
  t.is(removed.exitCode, 0, removed.stderr);
  t.regex(removed.stdout, /geoip: secret DATABASE_URL removed/);
  const refused = await coordinator.cli(["deploy", spec, "--release", "v3"], ops);
  t.is(refused.exitCode, 65);
  t.regex(refused.stderr, /run\.env references the secret DATABASE_URL, which geoip does not have; nothing was deployed.*\(ERR_SECRET_UNKNOWN\)/s);
  t.is((await getThroughProxy(address, PORTS.listen)).version, "v2", "v2 keeps serving");
  const rmAgain = await coordinator.cli(["secret", "rm", "geoip", "DATABASE_URL"], ops);
  t.is(rmAgain.exitCode, 65);
  t.regex(rmAgain.stderr, /geoip has no secret DATABASE_URL.*\(ERR_SECRET_UNKNOWN\)/);

  // Every read an operator makes: the spec comes back with the reference, never the value.
  const status = await coordinator.cli(["status", "geoip", "--json"]);
  const history = await coordinator.cli(["history", "geoip", "--json"]);
  const audit = await coordinator.cli(["audit", "--limit", "500", "--json"]);
  for (const [what, result] of [["status", status], ["history", history], ["audit", audit]] as const) {
    t.is(result.exitCode, 0, `${what}: ${result.stderr}`);
    keep(what, result);
  }
  const deploymentId = (JSON.parse(history.stdout) as { id: string; release: string }[]).find((d) => d.release === "v1")!.id;
  const headers = { authorization: `Bearer ${coordinator.adminToken}` };
  const deployment = await (await fetch(`${coordinator.url}/v1/deployments/${deploymentId}`, { headers })).text();
  const events = await (await fetch(`${coordinator.url}/v1/deployments/${deploymentId}/events`, { headers })).text();
  reads.push(["GET /v1/deployments/:id", deployment], ["GET /v1/deployments/:id/events", events]);
  t.regex(events, /serving v1/, "the events were read");

  // The audit trail says who set and removed which app's secret — never the value.
  const rows = JSON.parse(audit.stdout) as AuditRow[];
  const sets = rows.filter((r) => r.action === "PUT /v1/apps/geoip/secrets/DATABASE_URL" && r.outcome === "200");
  t.is(sets.length, 2);
  t.true(sets.every((r) => r.actor === "ops" && r.target === "geoip"));
  t.like(rows.find((r) => r.action === "DELETE /v1/apps/geoip/secrets/DATABASE_URL" && r.outcome === "200"), { actor: "ops", target: "geoip" });
  t.like(rows.find((r) => r.action === "PUT /v1/apps/geoip/secrets/DATABASE_URL" && r.outcome === "403"), { actor: "dashboard" });

  // Logs: the coordinator's stdout and both agents' output.
  reads.push(["coordinator stdout", coordinator.process.lines.join("\n")], ["app host agent output", appAgent.process.lines.join("\n")], ["other host agent output", otherAgent.process.lines.join("\n")]);
  // Files at rest: every file in both agents' state dirs (state, instance records, logs, nginx config)
  // and the coordinator's store with its write-ahead log.
  const files = [
    ...filesUnder(appAgent.options.stateDir),
    ...filesUnder(otherAgent.options.stateDir),
    ...["cutover.db", "cutover.db-wal"].map((f) => join(coordinator.dataDir, f)).filter(existsSync),
  ];
  t.true(files.some((f) => f.endsWith(join("apps", "geoip", "state.json"))), "the app's saved state was read");
  t.true(files.some((f) => f.endsWith("cutover.db-wal")), "the store's WAL was read");
  t.true(files.some((f) => f.includes(join("logs", "geoip"))), "the app's log was read");

  const needles = [secret, rotated].flatMap((value) => [Buffer.from(value), Buffer.from(value).toString("base64")]);
  const leaks: string[] = [];
  for (const [what, text] of reads) for (const needle of needles) if (text.includes(needle.toString())) leaks.push(what);
  for (const file of files) {
    const bytes = readFileSync(file);
    for (const needle of needles) if (bytes.includes(needle)) leaks.push(file);
  }
  t.deepEqual([...new Set(leaks)], [], "where a secret's bytes were found");
  // The env file's value is the host's: read by the agent at start, never logged or saved.
  const hostLeaks = [...reads.filter(([, text]) => text.includes(hostValue)).map(([what]) => what), ...files.filter((f) => readFileSync(f).includes(hostValue))];
  t.deepEqual(hostLeaks, [], "where the env file's value was found");
  t.false(readFileSync(join(coordinator.dataDir, "cutover.db")).includes(Buffer.from("postgres://")), "not even the shape of the value is in the store");
});

test.serial("an env_file that is missing or world-writable fails the host's deploy before the switch, naming the file; what served keeps serving", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const { coordinator } = fleet;
  const address = fleet.addresses[0]!;
  const envFile = join(fleet.dir, "geoip.env");
  writeFileSync(envFile, "GEOIP_DB=/var/lib/geoip.mmdb\n", { mode: 0o600 });
  const set = await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL", "--json"], "s3cr3t-value", coordinator.adminToken);
  t.is(set.exitCode, 0, set.stderr);
  const spec = writeSecretSpec(fleet.dir, envFile);
  const v1 = await coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  t.is((await envHashes(address)).GEOIP_DB, sha256("/var/lib/geoip.mmdb"));

  const hostError = (result: CliResult) => ((JSON.parse(result.stdout) as { hosts: { error: string | null }[] }).hosts[0]?.error ?? "");
  chmodSync(envFile, 0o666);
  const writable = await coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(writable.exitCode, 1, "the deploy failed");
  t.true(hostError(writable).includes(`run.env_file ${envFile} is world-writable (mode 0666): anyone on the host could set the app's environment; chmod o-w it`), writable.stdout);
  t.is((await getThroughProxy(address, PORTS.listen)).version, "v1");

  const missing = join(fleet.dir, "nowhere.env");
  const v3 = await coordinator.cli(["deploy", writeSecretSpec(fleet.dir, missing), "--release", "v3", "--json"]);
  t.is(v3.exitCode, 1);
  t.true(hostError(v3).includes(`run.env_file ${missing} does not exist on this host: create it (KEY=VALUE lines, not world-writable) or take env_file out of the spec`), v3.stdout);
  t.is((await getThroughProxy(address, PORTS.listen)).version, "v1", "v1 keeps serving");
});

test.serial("a restarted agent keeps the app running with its secret, cannot restart it without one and says so, and the next deploy brings it again", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const { coordinator } = fleet;
  const [agent] = fleet.agents as [(typeof fleet.agents)[0]];
  const address = fleet.addresses[0]!;
  const secret = `k-${randomBytes(12).toString("hex")}`;
  const envFile = join(fleet.dir, "geoip.env");
  writeFileSync(envFile, "GEOIP_DB=/var/lib/geoip.mmdb\n", { mode: 0o600 });
  t.is((await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL"], secret)).exitCode, 0);
  const spec = writeSecretSpec(fleet.dir, envFile);
  const v1 = await coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  const recordPath = join(agent.options.stateDir, "instances", "geoip", "blue.json");
  const { pid } = JSON.parse(readFileSync(recordPath, "utf8")) as { pid: number };

  // The agent dies and comes back: it adopts the process, which kept its environment.
  await agent.process.kill("SIGKILL");
  agent.start();
  await agent.online();
  t.is((JSON.parse(readFileSync(recordPath, "utf8")) as { pid: number }).pid, pid, "the same process serves");
  t.is((await envHashes(address)).DATABASE_URL, sha256(secret));

  // The app crashes: the restarted agent holds no secret values (none were ever on its disk), so it says what brings them.
  const mark = agent.process.mark();
  process.kill(pid, "SIGKILL");
  const refused = await agent.process.waitForLine(/restart failed.*geoip needs the secret DATABASE_URL, which this agent does not hold/, mark);
  t.regex(refused, /`cutover deploy` \(or `cutover rollback`\) geoip sends them again/);
  t.false(refused.includes(secret));

  const v2 = await coordinator.cli(["deploy", spec, "--release", "v2"]);
  t.is(v2.exitCode, 0, v2.stderr);
  t.is((await envHashes(address)).DATABASE_URL, sha256(secret), "the deploy brought the value again");
  t.is((await getThroughProxy(address, PORTS.listen)).version, "v2");
});

test.serial("a deployment left running when the secrets key was replaced does not keep the restarted coordinator down: it is marked failed, naming why", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const { coordinator } = fleet;
  const envFile = join(fleet.dir, "geoip.env");
  writeFileSync(envFile, "GEOIP_DB=/var/lib/geoip.mmdb\n", { mode: 0o640 });
  const path = writeSecretSpec(fleet.dir, envFile);
  // A release that takes a while to listen: the deployment is still running when the coordinator dies.
  const spec = parse(readFileSync(path, "utf8")) as { run: { command: string[] } };
  spec.run.command.push("--slow-start", "5000");
  writeFileSync(path, stringify(spec));
  t.is((await cliWithStdin(coordinator, ["secret", "set", "geoip", "DATABASE_URL"], "postgres://geoip:s3cret@db/geoip")).exitCode, 0);
  const started = await coordinator.cliJson<{ id: string }>(["deploy", path, "--release", "v1", "--detach"]);
  t.is(started.exitCode, 0, started.stderr);

  await coordinator.process.kill("SIGKILL");
  // Another key: the sealed secret no longer opens (a data dir restored without its key).
  writeFileSync(join(coordinator.dataDir, "secrets.key"), randomBytes(32), { mode: 0o600 });
  await coordinator.start();

  const outcome = await coordinator.cliJson<{ id: string; status: string; error: string }>(["deploy", "--attach", started.json.id]);
  t.is(outcome.json.status, "failed");
  t.regex(outcome.json.error, /^the coordinator restarted during it and could not resume it: the stored secret DATABASE_URL of geoip does not open with DATA_DIR\/secrets.key: .*; every host keeps what its agent finished/);
  t.is((await coordinator.cli(["hosts"])).exitCode, 0, "the coordinator serves");
});
