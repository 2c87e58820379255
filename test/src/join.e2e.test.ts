// `cutover hosts join-command`: the one line an operator pastes on a host, run for real with
// bash, curl and install.sh (in its --root/--no-systemd test mode) against a --tls coordinator
// that serves install.sh and the signed agent bundle. What an operator checks: the host shows
// online with the labels the line's token binds; a bundle altered on the way installs nothing.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { execFileSync } from "node:child_process";
import { copyFileSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest, createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { HostView } from "@cutover/coordinator";
import { startCoordinator, type CoordinatorProcess } from "./harness/fleet.js";
import { outputOf, runCli, spawnWatched, CUTOVER_BIN, tempDir, type CliResult } from "./harness/processes.js";
import { ensureAgentBundle } from "./install/bundle.js";
import { agentPids, hostRoot, INSTALL_SH, PATHS, snapshot } from "./install/host-root.js";

/** One host of `cutover hosts --json`. */
type HostJson = HostView;

let bundle = "";

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error("the join-command tests need root: install.sh refuses to run without it");
  bundle = await ensureAgentBundle();
});

async function tlsCoordinator(t: ExecutionContext, extraArgs: string[] = []) {
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s", "--tls", ...extraArgs]);
  const line = await coordinator.process.waitForLine(/^TLS certificate fingerprint sha256:/);
  return { coordinator, fingerprint: line.split(" ").at(-1)! };
}

function cli(coordinator: CoordinatorProcess, args: string[], fingerprint = ""): Promise<CliResult> {
  return runCli(args, { CUTOVER_URL: coordinator.url, CUTOVER_TOKEN: coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent", CUTOVER_FINGERPRINT: fingerprint });
}

async function hosts(coordinator: CoordinatorProcess, fingerprint: string): Promise<HostJson[]> {
  const result = await cli(coordinator, ["hosts", "--json"], fingerprint);
  if (result.exitCode !== 0) throw new Error(`cutover hosts failed (${result.exitCode}): ${result.stderr}`);
  return JSON.parse(result.stdout) as HostJson[];
}

async function joinCommand(coordinator: CoordinatorProcess, fingerprint: string, args: string[]): Promise<string> {
  const result = await cli(coordinator, ["hosts", "join-command", ...args], fingerprint);
  if (result.exitCode !== 0) throw new Error(`hosts join-command failed (${result.exitCode}): ${result.stderr}`);
  const lines = result.stdout.trim().split("\n");
  if (lines.length !== 1) throw new Error(`join-command printed ${lines.length} lines, not one:\n${result.stdout}`);
  return lines[0]!;
}

/**
 * The pasted line as root's shell runs it, from an empty directory, plus what keeps the test
 * off the real host (the "host" is a --root dir on this machine) and gives it its own name.
 */
async function paste(t: ExecutionContext, line: string, root: string, address: string): Promise<CliResult> {
  const testMode = ["--root", root, "--no-systemd", "--node", process.execPath, "--nginx", "managed", "--name", "host-a", "--address", address, "--timeout", "30"];
  return outputOf(spawn("bash", ["-c", `${line} ${testMode.join(" ")}`], { cwd: tempDir(t, "cutover-join-cwd-"), stdio: ["ignore", "pipe", "pipe"] }));
}

const output = (r: CliResult) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

function loopback(): string {
  return `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.${2 + Math.floor(Math.random() * 250)}`;
}

/**
 * An https server in front of the coordinator that answers as it does but alters the agent
 * bundle on the way: `cert`/`key` are the coordinator's own (someone who took its TLS key, or
 * a mirror in between) or another pair (an impostor).
 */
async function tamperingProxy(t: ExecutionContext, coordinator: CoordinatorProcess, tls: { cert: string; key: string }, alter: (body: Buffer, headers: Record<string, string>) => void): Promise<string> {
  const upstream = new URL(coordinator.url);
  const server = createHttpsServer(tls, (request, response) => {
    const forwarded = httpsRequest({ host: upstream.hostname, port: upstream.port, path: request.url, method: request.method, headers: request.headers, rejectUnauthorized: false }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on("data", (chunk: Buffer) => chunks.push(chunk));
      answer.on("end", () => {
        let body = Buffer.concat(chunks);
        const headers = Object.fromEntries(Object.entries(answer.headers).filter(([, v]) => typeof v === "string")) as Record<string, string>;
        if (request.url === "/v1/agent/bundle" && answer.statusCode === 200) {
          body = Buffer.from(body);
          alter(body, headers);
        }
        headers["content-length"] = String(body.length);
        response.writeHead(answer.statusCode ?? 502, headers).end(body);
      });
    });
    request.pipe(forwarded);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A bundle with one byte changed after its mark line: still "a cutover-agent bundle" to a glance. */
function flipAByte(body: Buffer): void {
  const at = body.length - 10;
  body[at] = body[at]! ^ 0x20;
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

test.serial("the join command installs and enrolls a host: it shows online with the labels the line's token binds", async (t) => {
  const { coordinator, fingerprint } = await tlsCoordinator(t);
  const line = await joinCommand(coordinator, fingerprint, ["--labels", "role=geoip,zone=a", "--ttl", "10m"]);
  // install.sh comes over TLS pinned to the certificate's key, and the bundle is checked against the key in the line.
  t.regex(line, /^s=\$\(curl -fsS -k --pinnedpubkey sha256\/\/[A-Za-z0-9+/]{43}= https:\/\/127\.0\.0\.1:\d+\/install\.sh\) && bash -c "\$s" install\.sh /);
  t.true(line.includes(` --pin ${fingerprint} `), line);
  t.regex(line, / --coordinator-key [A-Za-z0-9_-]{43} --fetch-agent /);

  const root = hostRoot(t);
  const address = loopback();
  const result = await paste(t, line, root, address);
  t.is(result.exitCode, 0, output(result));
  t.regex(result.stdout, /install\.sh: verified: the agent \(sha256 [0-9a-f]{64}\) is signed by the coordinator's key/);
  t.regex(result.stdout, /the agent is online: .*to=online why=enrolled/);

  const [host, ...others] = await hosts(coordinator, fingerprint);
  t.deepEqual(others, []);
  t.like(host, { name: "host-a", address, state: "online", labels: { role: "geoip", zone: "a" }, pendingLabels: null });
  // What runs is what the coordinator serves: the checkout's dist/cutover-agent.mjs (its default).
  t.is(sha256(readFileSync(join(root, PATHS.agentJs))), sha256(readFileSync(bundle)));
  t.is(agentPids(root).length, 1);
  t.regex(readFileSync(join(root, PATHS.config), "utf8"), new RegExp(`^coordinator_fingerprint: "sha256:${fingerprint.slice("sha256:".length).replaceAll(":", "").toLowerCase()}"$`, "m"));

  // The line's token is spent: pasted on a second host it enrolls nothing.
  const tokens = JSON.parse((await cli(coordinator, ["token", "list", "--json"], fingerprint)).stdout) as { kind: string; state: string; usedBy: string | null }[];
  t.like(tokens.find((tk) => tk.kind === "enrollment"), { state: "used", usedBy: "host-a" });
});

interface Tampered {
  /** The proxy's TLS pair: the coordinator's own, or another. */
  impostor?: boolean;
  alter: (body: Buffer, headers: Record<string, string>) => void;
  exitCode: number;
  error: RegExp;
}

const refusesTampered = test.macro({
  async exec(t, bad: Tampered) {
    const { coordinator, fingerprint } = await tlsCoordinator(t);
    const tlsDir = join(coordinator.dataDir, "tls");
    let pair = { cert: readFileSync(join(tlsDir, "cert.pem"), "utf8"), key: readFileSync(join(tlsDir, "key.pem"), "utf8") };
    if (bad.impostor) {
      const dir = tempDir(t, "cutover-impostor-");
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=cutover-coordinator", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
      pair = { cert: readFileSync(join(dir, "cert.pem"), "utf8"), key: readFileSync(join(dir, "key.pem"), "utf8") };
    }
    const proxy = await tamperingProxy(t, coordinator, pair, bad.alter);
    const line = await joinCommand(coordinator, fingerprint, ["--labels", "role=geoip", "--coordinator", proxy]);
    const root = hostRoot(t);
    const before = snapshot(root, { mtimes: true });
    const result = await paste(t, line, root, loopback());
    t.is(result.exitCode, bad.exitCode, output(result));
    t.regex(result.stderr, bad.error);
    t.notRegex(result.stdout, /install\.sh: (write|create|start) /, "no action taken");
    t.deepEqual(snapshot(root, { mtimes: true }), before, "nothing under the --root");
    t.deepEqual(agentPids(root), []);
    t.deepEqual(await hosts(coordinator, fingerprint), [], "no host enrolled");
  },
  title: (title = "") => `the pasted line refuses ${title} before anything is installed`,
});

test.serial("a bundle altered on the way (the sha256 announced is the coordinator's)", refusesTampered, {
  alter: (body) => flipAByte(body),
  exitCode: 1,
  error: /install\.sh: error: the agent bundle's sha256 is [0-9a-f]{64}, not the [0-9a-f]{64} the coordinator announced .*refusing it/,
});

test.serial("a bundle altered with a matching sha256 (only the coordinator's signature can tell)", refusesTampered, {
  alter: (body, headers) => {
    flipAByte(body);
    headers["x-cutover-sha256"] = sha256(body);
  },
  exitCode: 1,
  error: /install\.sh: error: the agent bundle \(sha256 [0-9a-f]{64}\) is not signed by the coordinator key [A-Za-z0-9_-]{43}: refusing to install it/,
});

test.serial("an impostor with another certificate (curl's public-key pin, even with -k)", refusesTampered, {
  impostor: true,
  alter: () => {},
  // CURLE_SSL_PINNEDPUBKEYNOTMATCH: install.sh never arrives, so nothing runs.
  exitCode: 90,
  error: /curl: \(90\) SSL: public key does not match pinned public key/,
});

test("over plain http the join command says it cannot pin and refuses, unless --allow-unpinned", async (t) => {
  const coordinator = await startCoordinator(t);
  const refused = await coordinator.cli(["hosts", "join-command", "--labels", "role=geoip"]);
  t.is(refused.exitCode, 64, output(refused));
  t.regex(refused.stderr, /cannot pin: the coordinator serves plain http \(http:\/\/127\.0\.0\.1:\d+\).*cutover server --tls.*--allow-unpinned/);
  t.is(refused.stdout, "");
  const tokens = JSON.parse((await coordinator.cli(["token", "list", "--json"])).stdout) as unknown[];
  t.deepEqual(tokens.filter((tk) => (tk as { kind: string }).kind === "enrollment"), [], "no token made for a line not printed");

  const unpinned = await coordinator.cli(["hosts", "join-command", "--labels", "role=geoip", "--allow-unpinned"]);
  t.is(unpinned.exitCode, 0, output(unpinned));
  t.regex(unpinned.stdout, /^s=\$\(curl -fsS http:\/\/127\.0\.0\.1:\d+\/install\.sh\) && bash -c "\$s" install\.sh --coordinator http:\/\/127\.0\.0\.1:\d+ --token cte_\S+ --coordinator-key [A-Za-z0-9_-]{43} --fetch-agent --labels role=geoip\n$/);
  t.regex(unpinned.stderr, /warning: unpinned/);
});

test("the coordinator serves install.sh and the signed bundle without a token, and refuses clearly when the bundle is gone", async (t) => {
  const dir = tempDir(t, "cutover-served-");
  const served = join(dir, "cutover-agent.mjs");
  copyFileSync(bundle, served);
  const coordinator = await startCoordinator(t, ["--agent-bundle", served, "--installer", INSTALL_SH]);
  const script = await fetch(`${coordinator.url}/install.sh`);
  t.is(script.status, 200);
  t.is(await script.text(), readFileSync(INSTALL_SH, "utf8"));
  const got = await fetch(`${coordinator.url}/v1/agent/bundle`);
  t.is(got.status, 200);
  const bytes = Buffer.from(await got.arrayBuffer());
  t.is(sha256(bytes), sha256(readFileSync(served)));
  t.is(got.headers.get("x-cutover-sha256"), sha256(bytes));
  t.regex(got.headers.get("x-cutover-signature") ?? "", /^[A-Za-z0-9_-]{86}$/);

  rmSync(served);
  const missing = await coordinator.cli(["hosts", "join-command", "--allow-unpinned"]);
  t.is(missing.exitCode, 65, output(missing));
  t.regex(missing.stderr, /agent bundle .*cutover-agent\.mjs \(--agent-bundle\) is gone: rebuild it with `node scripts\/bundle-agent\.mjs`.*\(ERR_AGENT_BUNDLE_MISSING\)/);
  t.is((await fetch(`${coordinator.url}/v1/agent/bundle`)).status, 404);

  const server = spawnWatched("coordinator", CUTOVER_BIN, ["server", "--data-dir", tempDir(t), "--listen", "127.0.0.1:0", "--agent-bundle", "/nonexistent/cutover-agent.mjs"]);
  t.is((await server.exited).code, 64);
  t.true(server.lines.some((l) => /--agent-bundle \/nonexistent\/cutover-agent\.mjs: no such file \(build it with `node scripts\/bundle-agent\.mjs`/.test(l)), server.lines.join("\n"));
});
