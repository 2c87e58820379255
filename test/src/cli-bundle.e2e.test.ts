import test from "ava";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";
import { runCli, tempDir } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";
import { ensureCliBundle } from "./install/bundle.js";

// The one-file CLI (scripts/bundle-cli.mjs) as an operator runs it from a laptop or a CI job:
// dist/cutover.mjs copied alone into an empty directory, nothing installed but node.

const LISTEN = 8080;

test.serial("the one-file CLI, alone in an empty directory, deploys to a running coordinator and reads the result back", async (t) => {
  const bundle = await ensureCliBundle();
  const dir = tempDir(t, "cutover-cli-alone-");
  const cli = join(dir, "cutover.mjs");
  copyFileSync(bundle, cli);
  const fleet = await startFleet(t, { hosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { listen: LISTEN, blue: 7001, green: 7002 });
  // NODE_PATH empty: nothing but the file itself to load modules from.
  const env = { CUTOVER_URL: fleet.coordinator.url, CUTOVER_TOKEN: fleet.coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml", NODE_PATH: "" };
  const alone = (args: string[]) => runCli(args, env, { bin: cli, cwd: dir });

  const help = await alone(["--help"]);
  t.is(help.exitCode, 0, help.stderr);
  t.regex(help.stdout, /deploy \[options\] \[spec\]/);

  // The artifact is packed (tar), uploaded, and the deploy followed to its end, all from the bundle.
  const deploy = await alone(["deploy", spec, "--release", "v1", "--json"]);
  t.is(deploy.exitCode, 0, `${deploy.stdout}\n${deploy.stderr}`);
  const deployed = JSON.parse(deploy.stdout) as { status: string; hosts: { name: string; release: string | null }[] };
  t.is(deployed.status, "succeeded");
  t.deepEqual(deployed.hosts.map((h) => [h.name, h.release]), [["web-1", "v1"]]);
  t.is((await getThroughProxy(fleet.addresses[0]!, LISTEN)).version, "v1");

  const status = await alone(["status", "geoip", "--json"]);
  t.is(status.exitCode, 0, status.stderr);
  t.deepEqual((JSON.parse(status.stdout) as { hosts: { name: string; release: string }[] }).hosts.map((h) => [h.name, h.release]), [["web-1", "v1"]]);

  // Started detached, then followed to its end by `status --follow`, as --detach tells the operator to.
  const detached = await alone(["deploy", spec, "--release", "v2", "--detach", "--json"]);
  t.is(detached.exitCode, 0, detached.stderr);
  const started = JSON.parse(detached.stdout) as { id: string; release: string };
  t.is(started.release, "v2");
  const followed = await alone(["status", "geoip", "--follow", "--json"]);
  t.is(followed.exitCode, 0, `${followed.stdout}\n${followed.stderr}`);
  const outcome = JSON.parse(followed.stdout) as { id: string; status: string; release: string; hosts: { release: string | null }[] };
  t.deepEqual([outcome.id, outcome.status, outcome.release, outcome.hosts.map((h) => h.release)], [started.id, "succeeded", "v2", ["v2"]]);
  t.is((await getThroughProxy(fleet.addresses[0]!, LISTEN)).version, "v2");
  // Once it is over, --follow shows how it ended: the same whether it was caught running or not.
  const again = await alone(["status", "geoip", "--follow", "--json"]);
  t.is(again.exitCode, 0, again.stderr);
  t.like(JSON.parse(again.stdout), { id: started.id, status: "succeeded", release: "v2" });
  // deploy --attach ID: the same, by the deployment's id.
  const attached = await alone(["deploy", "--attach", started.id, "--json"]);
  t.is(attached.exitCode, 0, attached.stderr);
  t.like(JSON.parse(attached.stdout), { id: started.id, status: "succeeded", release: "v2" });
  const unknown = await alone(["deploy", "--attach", "no-such-deployment", "--json"]);
  t.is(unknown.exitCode, 65);
  t.is((JSON.parse(unknown.stderr) as { error: { code: string } }).error.code, "ERR_NOT_FOUND");
  const both = await alone(["deploy", spec, "--release", "v3", "--attach", started.id]);
  t.is(both.exitCode, 64);
  t.regex(both.stderr, /--attach follows a deployment already started: it takes no SPEC and no --release/);
  const noRelease = await alone(["deploy", spec]);
  t.is(noRelease.exitCode, 64);
  t.regex(noRelease.stderr, /deploy needs a SPEC and --release/);
  const noApp = await alone(["status", "--follow"]);
  t.is(noApp.exitCode, 64);
  t.regex(noApp.stderr, /--follow needs an APP/);

  // Only the server needs the SQLite addon: asked for by name, before anything is created.
  const dataDir = join(dir, "data");
  const server = await alone(["server", "--data-dir", dataDir, "--listen", "127.0.0.1:0"]);
  t.is(server.exitCode, 1);
  t.regex(server.stderr, /^cutover: cutover server needs the SQLite addon better-sqlite3 \(12\.x\), and it is not installed here: `npm install better-sqlite3@12` beside cutover\.mjs/);
  t.false(existsSync(dataDir));

  t.deepEqual(readdirSync(dir), ["cutover.mjs"], "the CLI left nothing in its directory");
});

test.serial("offline, from the one-file CLI: init writes a commented starter spec that validate accepts once its artifact exists; invalid specs exit 64 with every issue", async (t) => {
  const bundle = await ensureCliBundle();
  const dir = tempDir(t, "cutover-cli-offline-");
  const cli = join(dir, "cutover.mjs");
  copyFileSync(bundle, cli);
  // Nothing listens on port 9: a verb that needed the coordinator would exit 69.
  const offline = (args: string[]) => runCli(args, { CUTOVER_URL: "http://127.0.0.1:9", CUTOVER_TOKEN: "unused", CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml", NODE_PATH: "" }, { bin: cli, cwd: dir });

  const init = await offline(["init", "--app", "billing"]);
  t.is(init.exitCode, 0, init.stderr);
  t.regex(init.stdout, /^wrote .*cutover\.yml for app billing: /);
  const written = readFileSync(join(dir, "cutover.yml"), "utf8");
  t.regex(written, /^app: billing$/m);

  const noArtifact = await offline(["validate", "cutover.yml"]);
  t.is(noArtifact.exitCode, 64);
  t.regex(noArtifact.stderr, /^cutover: cutover\.yml is invalid:\ncutover\.yml: artifact: /);

  mkdirSync(join(dir, "dist"));
  const valid = await offline(["validate", "cutover.yml"]);
  t.is(valid.exitCode, 0, valid.stderr);
  t.is(valid.stdout, `cutover.yml: valid: app billing, bluegreen 25% at a time, hosts role=billing, artifact ${join(dir, "dist")} (a directory, packed at deploy)\n`);
  const validJson = await offline(["validate", "cutover.yml", "--batch", "2", "--json"]);
  t.is(validJson.exitCode, 0, validJson.stderr);
  t.deepEqual(JSON.parse(validJson.stdout), { valid: true, file: "cutover.yml", app: "billing", strategy: "bluegreen", batch: "2", hosts: { role: "billing" }, artifact: { path: join(dir, "dist"), kind: "dir" } });

  // Never overwritten without --force.
  writeFileSync(join(dir, "cutover.yml"), written.replace("blue: 7001", "blue: seven").replace("listen: 80 ", "listen: 0 "));
  const again = await offline(["init", "--app", "billing"]);
  t.is(again.exitCode, 64);
  t.regex(again.stderr, /cutover\.yml exists; nothing was written \(--force overwrites it\)/);
  const invalid = await offline(["validate", "cutover.yml", "--json"]);
  t.is(invalid.exitCode, 64);
  const issues = (JSON.parse(invalid.stdout) as { valid: boolean; issues: { field: string }[] }).issues.map((i) => i.field);
  t.deepEqual(issues, ["ports.blue", "proxy.listen"], "every issue in one pass");

  const badName = await offline(["init", "other.yml", "--app", "Bad Name"]);
  t.is(badName.exitCode, 64);
  t.false(existsSync(join(dir, "other.yml")));
  t.deepEqual(readdirSync(dir).sort(), ["cutover.mjs", "cutover.yml", "dist"]);
});
