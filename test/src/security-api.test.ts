/**
 * Issue 11, findings 4, 6 and 8 (API, tokens, CLI): each test is an attack
 * that worked on the code before and is refused now, with what the operator
 * (or the attacker) sees. The coordinator is a real `cutover server`, the CLI
 * the real `cutover`; a misbehaving host is a RawAgent. Serial: each test
 * starts a coordinator and spawns the CLI, and the machine has 2 cores.
 */
import test from "ava";
import { chmodSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { RefusalCode, openSignedCommand, type cutover } from "@cutover/protocol";
import { startCoordinator, type AuditRow, type CoordinatorProcess } from "./harness/fleet.js";
import { inProcessCoordinator } from "./harness/in-process.js";
import { AGENT_BIN, runCli, spawnWatched, tempDir } from "./harness/processes.js";
import { newKey, RawAgent } from "./harness/raw-agent.js";

interface TokenRow {
  id: string;
  kind: string;
  name: string | null;
  role: string | null;
  state: string;
  expiresAt: string | null;
  usedBy: string | null;
  revokedBy: string | null;
  labels: Record<string, string> | null;
  address: string | null;
}

const MIB = 1024 * 1024;
const FINGERPRINT = `sha256:${"AB:".repeat(31)}AB`;

async function json<T>(coordinator: CoordinatorProcess, args: string[]): Promise<T> {
  const result = await coordinator.cli([...args, "--json"]);
  if (result.exitCode !== 0) throw new Error(`cutover ${args.join(" ")}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

const auditTrail = (coordinator: CoordinatorProcess) => json<AuditRow[]>(coordinator, ["audit", "--limit", "500"]);

function storeBytes(dataDir: string): number {
  return ["cutover.db", "cutover.db-wal"].map((f) => join(dataDir, f)).filter(existsSync).reduce((n, path) => n + statSync(path).size, 0);
}

async function createApiToken(coordinator: CoordinatorProcess, role: string, name: string, more: string[] = []): Promise<{ token: string; id: string; expiresAt: string | null }> {
  return json(coordinator, ["token", "create", "--api", "--role", role, "--name", name, ...more]);
}

// ── Finding 4: unauthenticated requests fill the disk ──────────────────────────

test.serial("five tokenless 1 MB POSTs leave the store as it was: the body is never read, each refusal is one small audit row", async (t) => {
  const coordinator = await startCoordinator(t);
  await auditTrail(coordinator); // the store as an idle coordinator keeps it
  const before = storeBytes(coordinator.dataDir);
  const body = JSON.stringify({ role: "admin", name: "x".repeat(MIB) });
  for (let i = 0; i < 5; i++) {
    const response = await fetch(`${coordinator.url}/v1/tokens/api`, { method: "POST", headers: { "content-type": "application/json" }, body });
    t.is(response.status, 401);
    t.like(await response.json(), { error: { code: "ERR_UNAUTHENTICATED" } });
  }
  const rows = (await auditTrail(coordinator)).filter((r) => r.action === "POST /v1/tokens/api");
  const grown = storeBytes(coordinator.dataDir) - before;
  t.log(`the store grew by ${grown} bytes for ${5 * body.length} sent`);
  t.true(grown < 256 * 1024, `the store grew by ${grown} bytes (it grew by about 8 MB before)`);
  t.is(rows.length, 5);
  for (const row of rows) {
    t.like(row, { actor: "(no valid token)", target: "api token", outcome: "401", detail: "from=127.0.0.1" }, "nothing from the body: it was not read");
  }
});

test.serial("a tokenless POST with a body that is not JSON is refused 401, not 400: nothing parsed it", async (t) => {
  const coordinator = await startCoordinator(t);
  const response = await fetch(`${coordinator.url}/v1/deployments`, { method: "POST", headers: { "content-type": "application/json" }, body: `{"spec": ${"[".repeat(MIB)}` });
  t.is(response.status, 401, "before, express.json parsed it first and answered 400");
  t.like(await response.json(), { error: { code: "ERR_UNAUTHENTICATED" } });
  const reader = await createApiToken(coordinator, "read", "dashboard");
  const forbidden = await fetch(`${coordinator.url}/v1/deployments`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${reader.token}` },
    body: `{"spec": ${"[".repeat(MIB)}`,
  });
  t.is(forbidden.status, 403, "a token without the route's role does not get its body read either");
});

test.serial("a flood of bad tokens is audited up to a budget per address, summed into one row, answered 429 past the rate; the admin from the same address still gets in", async (t) => {
  const coordinator = await startCoordinator(t);
  // 70 guesses well inside one minute (the budget's window): 10 audited one by one, 50 counted, 10 answered 429.
  const statuses: number[] = [];
  for (let i = 0; i < 70; i++) {
    const response = await fetch(`${coordinator.url}/v1/hosts`, { headers: { authorization: `Bearer cta_guess-${i}` } });
    statuses.push(response.status);
    if (response.status === 429) t.truthy(response.headers.get("retry-after"));
    await response.arrayBuffer();
  }
  t.deepEqual(statuses, [...Array(60).fill(401), ...Array(10).fill(429)]);

  const guessing = await coordinator.cli(["hosts"], "cta_one-more-guess");
  t.is(guessing.exitCode, 75, "try later: rate limited");
  t.regex(guessing.stderr, /too many refused calls from 127\.0\.0\.1: check the token, and try again in \d+s \(ERR_RATE_LIMITED\)/);

  const rows = await auditTrail(coordinator);
  const oneByOne = rows.filter((r) => r.action === "GET /v1/hosts");
  t.is(oneByOne.length, 10);
  t.like(oneByOne[0], { actor: "(no valid token)", outcome: "401", detail: "from=127.0.0.1" });
  const summaries = rows.filter((r) => r.action === "refused calls");
  t.is(summaries.length, 1, summaries.map((r) => r.detail).join("\n"));
  t.like(summaries[0], { actor: "(refused callers)", target: "127.0.0.1", outcome: "aggregated" });
  t.regex(summaries[0]!.detail, /^61 more refused calls from 127\.0\.0\.1 in the minute from \d\d:\d\d:\d\d UTC \(401: 50, 429: 11\), not audited one by one$/);
});

// ── Finding 6: nothing can be revoked ──────────────────────────────────────────

test.serial("a revoked API token is refused from then on, with what to do next; the list shows who revoked it; audited", async (t) => {
  const coordinator = await startCoordinator(t);
  const ci = await createApiToken(coordinator, "deploy", "ci");
  t.is((await coordinator.cli(["hosts"], ci.token)).exitCode, 0);

  const revoked = await coordinator.cli(["token", "revoke", ci.id]);
  t.is(revoked.exitCode, 0, revoked.stderr);
  t.is(revoked.stdout, `revoked api token "ci" (deploy) ${ci.id}: refused from now on\n`);
  const refused = await coordinator.cli(["hosts"], ci.token);
  t.is(refused.exitCode, 77, "denied: a revoked token");
  t.regex(refused.stderr, /check CUTOVER_TOKEN or --token \(an admin's `cutover token list` shows every token\): the API token is unknown or revoked \(ERR_UNAUTHENTICATED\)/);

  const listed = await json<TokenRow[]>(coordinator, ["token", "list"]);
  t.like(listed.find((r) => r.id === ci.id), { kind: "api", name: "ci", role: "deploy", state: "revoked", revokedBy: "admin" });
  const again = await coordinator.cli(["token", "revoke", ci.id]);
  t.is(again.exitCode, 65, "refused: already revoked (ERR_ALREADY_REVOKED)");
  t.regex(again.stderr, /api token "ci" \(deploy\) .* was already revoked at .* by admin \(ERR_ALREADY_REVOKED\)/);
  const trail = await auditTrail(coordinator);
  t.true(trail.some((r) => r.actor === "admin" && r.action === `POST /v1/tokens/${ci.id}/revoke` && r.outcome === "200" && /revoked api token "ci" \(deploy\)/.test(r.detail)));
  t.true(trail.some((r) => r.actor === "ci" && r.outcome === "401"), "the revoked token's later try is audited under its name");
});

test.serial("an API token created with --expires is refused once it has expired, saying so", async (t) => {
  const c = await inProcessCoordinator(t);
  const cli = (args: string[], token = c.adminToken) => runCli(args, { CUTOVER_URL: c.coordinator.url, CUTOVER_TOKEN: token, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml" });
  const created = await cli(["token", "create", "--api", "--role", "read", "--name", "dashboard", "--expires", "30d", "--json"]);
  t.is(created.exitCode, 0, created.stderr);
  const { token, id, expiresAt } = JSON.parse(created.stdout) as { token: string; id: string; expiresAt: string };
  const days = (Date.parse(expiresAt) - Date.now()) / 86_400_000;
  t.true(days > 29.9 && days <= 30, `expires in ${days} days`);
  t.is((await cli(["hosts"], token)).exitCode, 0);

  // Thirty days later.
  c.coordinator.db.prepare("UPDATE api_tokens SET expires_at = ? WHERE id = ?").run(Date.now() - 1, id);
  const refused = await cli(["hosts"], token);
  t.is(refused.exitCode, 77, "denied: an expired token");
  t.regex(refused.stderr, /the API token "dashboard" expired at .*: ask an admin for a new one .*\(ERR_TOKEN_EXPIRED\)/);
  const listed = JSON.parse((await cli(["token", "list", "--json"])).stdout) as TokenRow[];
  t.like(listed.find((r) => r.id === id), { state: "expired" });
  const bad = await cli(["token", "create", "--api", "--expires", "forever"]);
  t.is(bad.exitCode, 65, "refused by the coordinator, which reads the lifetime (ERR_BAD_REQUEST)");
  t.regex(bad.stderr, /expires: "forever" is not a lifetime: days like "30d" or a duration like "12h" or "90m" \(ERR_BAD_REQUEST\)/);
});

test.serial("a revoked enrollment token enrolls no host; a spent one is not revoked (it would change nothing) and says what would", async (t) => {
  const coordinator = await startCoordinator(t);
  const token = await coordinator.enrollmentToken();
  const [row] = (await json<TokenRow[]>(coordinator, ["token", "list"])).filter((r) => r.kind === "enrollment");
  const revoked = await coordinator.cli(["token", "revoke", row!.id]);
  t.is(revoked.stdout, `revoked enrollment token ${row!.id}: refused from now on\n`);
  const agent = await RawAgent.connect(coordinator.url);
  t.teardown(() => agent.close());
  const refusal = (await agent.handshake({ name: "web-1", key: newKey(), token })).refusal as cutover.v1.Refusal;
  t.is(refusal?.code, RefusalCode.EnrollTokenRevoked, "before, the token enrolled whoever held it until it expired");
  t.true(refusal.permanent);

  const spent = await coordinator.enrollmentToken();
  const host = await RawAgent.connect(coordinator.url);
  t.teardown(() => host.close());
  t.truthy((await host.handshake({ name: "web-2", key: newKey(), token: spent })).welcome);
  const used = (await json<TokenRow[]>(coordinator, ["token", "list"])).find((r) => r.state === "used")!;
  t.is(used.usedBy, "web-2");
  const pointless = await coordinator.cli(["token", "revoke", used.id]);
  t.is(pointless.exitCode, 65, "refused: a spent token (ERR_TOKEN_USED)");
  t.regex(pointless.stderr, /was spent by host web-2 at .*: revoking it changes nothing \(the host signs in with its key\); `cutover hosts remove web-2` shuts it out \(ERR_TOKEN_USED\)/);
});

test.serial("token list shows both kinds and what an enrollment token binds, never a secret; bad bindings and the last admin token are refused", async (t) => {
  const coordinator = await startCoordinator(t);
  const bound = await coordinator.enrollmentToken({ labels: "role=geoip,zone=a", address: "10.0.0.5" });
  const ci = await createApiToken(coordinator, "deploy", "ci", ["--expires", "12h"]);
  const table = await coordinator.cli(["token", "list"]);
  t.is(table.exitCode, 0, table.stderr);
  t.regex(table.stdout, /^ID +KIND +NAME +ROLE +STATE +CREATED +EXPIRES +USED BY +BINDS +REVOKED$/m);
  t.regex(table.stdout, new RegExp(`^${ci.id} +api +ci +deploy +active .* - +- +-$`, "m"));
  t.regex(table.stdout, /^\S+ +enrollment +- +- +active .* - +role=geoip,zone=a; address 10\.0\.0\.5 +-$/m);
  t.regex(table.stdout, /^\S+ +api +admin +admin +active .* never /m);
  for (const secret of [bound, ci.token, coordinator.adminToken]) t.false(table.stdout.includes(secret.slice(4, 20)), "no secret in the list");
  const listed = await json<TokenRow[]>(coordinator, ["token", "list"]);
  t.like(listed.find((r) => r.kind === "enrollment"), { labels: { role: "geoip", zone: "a" }, address: "10.0.0.5" });

  const badLabel = await coordinator.cli(["token", "create", "--labels", "Tier=web"]);
  t.is(badLabel.exitCode, 65, "refused by the coordinator, which checks labels (ERR_BAD_REQUEST)");
  t.regex(badLabel.stderr, /label Tier=web is invalid: key: a-z/);
  const badAddress = await coordinator.cli(["token", "create", "--address", "10.0.0.5; rm -rf /"]);
  t.is(badAddress.exitCode, 65);
  t.regex(badAddress.stderr, /address "10\.0\.0\.5; rm -rf \/" is neither an IPv4\/IPv6 address nor a host name \(ERR_BAD_REQUEST\)/);
  const mixed = await coordinator.cli(["token", "create", "--api", "--labels", "role=geoip"]);
  t.is(mixed.exitCode, 64);
  t.regex(mixed.stderr, /--labels: for enrollment tokens \(drop --api\/--role\)/);

  const admin = listed.find((r) => r.kind === "api" && r.name === "admin")!;
  const lastAdmin = await coordinator.cli(["token", "revoke", admin.id]);
  t.is(lastAdmin.exitCode, 65, "refused: the last admin token (ERR_LAST_ADMIN_TOKEN)");
  t.regex(lastAdmin.stderr, /api token "admin" \(admin\) is the last admin token that works: create another .* before revoking it \(ERR_LAST_ADMIN_TOKEN\)/);
  const reader = await createApiToken(coordinator, "read", "dashboard");
  const byReader = await coordinator.cli(["token", "list"], reader.token);
  t.is(byReader.exitCode, 77, "denied: role too low");
  t.regex(byReader.stderr, /this needs a token with role "admin"; yours \("dashboard"\) has "read" \(ERR_FORBIDDEN\)/);
});

// ── Finding 8: smaller ones ───────────────────────────────────────────────────

test.serial("the data dir is 0700 and the store, admin token, signing key and secrets key 0600 at every start, even when left open", async (t) => {
  const coordinator = await startCoordinator(t);
  const dir = coordinator.dataDir;
  const files = ["cutover.db", "cutover.db-wal", "admin-token", "coordinator-key.pem", "secrets.key"];
  await coordinator.process.kill("SIGKILL");
  chmodSync(dir, 0o755);
  for (const file of files) chmodSync(join(dir, file), 0o644);
  await coordinator.start();
  const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
  t.is(mode(dir), "700");
  for (const file of files) t.is(mode(join(dir, file)), "600", file);
});

test.serial("the CLI does not send its token over plain http to a host that only looks like loopback, nor pin a certificate http does not have", async (t) => {
  const env = { CUTOVER_TOKEN: "cta_secret", CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml", CUTOVER_FINGERPRINT: "" };
  const lookalike = await runCli(["hosts"], { ...env, CUTOVER_URL: "http://127.0.0.1.attacker.example:7400" });
  t.is(lookalike.exitCode, 64, "before, the prefix test took it for loopback and sent the token");
  t.regex(lookalike.stderr, /refusing to send the API token over plain http to 127\.0\.0\.1\.attacker\.example: anyone on the way could read and use it\. Use https:\/\/ with --fingerprint .* pass --allow-plain \(or set CUTOVER_ALLOW_PLAIN=1\)/);

  const coordinator = await startCoordinator(t);
  const pinned = await coordinator.cli(["hosts", "--fingerprint", FINGERPRINT]);
  t.is(pinned.exitCode, 64, "before, the fingerprint was silently ignored over http");
  t.regex(pinned.stderr, /a fingerprint pins the coordinator's TLS certificate, but http:\/\/127\.0\.0\.1:\d+ is plain http and has none to check/);
  t.is((await coordinator.cli(["hosts"])).exitCode, 0, "plain http on loopback is fine");
});

test.serial("the agent refuses a plain ws:// coordinator that only looks like loopback, and a fingerprint it could not check", async (t) => {
  const agentArgs = (coordinator: string, more: string[] = []) => ["--coordinator", coordinator, "--token", "x", "--state-dir", tempDir(t), "--name", "a", "--config", "/dev/null", ...more];
  const lookalike = spawnWatched("agent", AGENT_BIN, agentArgs("ws://127.0.0.1.attacker.example:7400"));
  t.teardown(() => lookalike.kill("SIGKILL"));
  t.is((await lookalike.exited).code, 78);
  t.true(lookalike.lines.some((l) => /refusing plain ws:\/\/ to 127\.0\.0\.1\.attacker\.example/.test(l)), lookalike.lines.join("\n"));

  const pinned = spawnWatched("agent", AGENT_BIN, agentArgs("http://127.0.0.1:7400", ["--coordinator-fingerprint", FINGERPRINT]));
  t.teardown(() => pinned.kill("SIGKILL"));
  t.is((await pinned.exited).code, 78);
  t.true(pinned.lines.some((l) => /--coordinator-fingerprint pins a TLS certificate, but http:\/\/127\.0\.0\.1:7400 is plain \(ws:\/\/, no TLS\) and has no certificate to check/.test(l)), pinned.lines.join("\n"));
});

test.serial("a read token does not stream app logs: logs need a deploy token", async (t) => {
  const coordinator = await startCoordinator(t);
  const reader = await createApiToken(coordinator, "read", "dashboard");
  const refused = await coordinator.cli(["logs", "geoip"], reader.token);
  t.is(refused.exitCode, 77, "denied: role too low");
  t.regex(refused.stderr, /this needs a token with role "deploy"; yours \("dashboard"\) has "read" \(ERR_FORBIDDEN\)/, "before, it passed and only found no host");
  const deployer = await createApiToken(coordinator, "deploy", "ci");
  const allowed = await coordinator.cli(["logs", "geoip"], deployer.token);
  t.is(allowed.exitCode, 65, "past the role check: refused as no host runs it");
  t.regex(allowed.stderr, /no online host runs geoip \(ERR_NO_HOSTS\)/);
});

test.serial("terminal escapes a host sends (its agent version, its log lines) are shown as text, not run by the operator's terminal; an address that is not one is not taken", async (t) => {
  const coordinator = await startCoordinator(t);
  const agent = await RawAgent.connect(coordinator.url);
  t.teardown(() => agent.close());
  const evil = "\x1b]0;owned\x07\x1b[2J1.0";
  const hello = { name: "evil", key: newKey(), token: await coordinator.enrollmentToken(), address: `\x1b[2J10.0.0.5`, agentVersion: evil };
  t.truthy((await agent.handshake(hello)).welcome);
  // Answer a TailLogs like an agent would, with lines that clear the screen and rewrite the line.
  agent.socket.on("message", () => {
    const outer = agent.received.at(-1)?.command;
    if (!outer) return;
    const command = openSignedCommand(outer as cutover.v1.Command);
    if (!command.tailLogs) return;
    agent.sendEnvelope({ logLines: { streamId: command.tailLogs.streamId, source: "agent", lines: ["\x1b[2Jall good\rdeploy failed", "\x9b31mred"] } });
    agent.sendEnvelope({ commandResult: { commandId: command.commandId, status: 1 } });
  });

  const hosts = await coordinator.cli(["hosts"]);
  t.is(hosts.exitCode, 0, hosts.stderr);
  t.regex(hosts.stdout, /^evil +(online|late) .* \\x1b\]0;owned\\x07\\x1b\[2J1\.0 /m, "no address taken; the version shown as text");
  await coordinator.process.waitForLine(/ignoring an address that is neither an IP address nor a host name/);
  const logs = await coordinator.cli(["logs", "--agent", "--host", "evil"]);
  t.is(logs.exitCode, 0, logs.stderr);
  t.is(logs.stdout, "evil agent | \\x1b[2Jall good\\x0ddeploy failed\nevil agent | \\x9b31mred\n");
  for (const output of [hosts.stdout, logs.stdout]) t.false(/[\x1b\x07\x9b\r]/.test(output), "no control character reaches the terminal");
});
