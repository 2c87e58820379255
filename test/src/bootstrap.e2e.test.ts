// `cutover hosts bootstrap -i inventory.ini` over real sshd: one sshd per "host" on its own
// 127.0.0.x address (its own host key, one authorized key, a known_hosts file the test writes:
// host keys are checked, never skipped), the system ssh and scp, and install.sh installing each
// host into its own --root dir with --no-systemd (the hosts share this machine).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { HostView } from "@cutover/coordinator";
import { startCoordinator, type CoordinatorProcess } from "./harness/fleet.js";
import { runCli, tempDir, type CliResult } from "./harness/processes.js";
import { ensureAgentBundle } from "./install/bundle.js";
import { agentPids, hostRoot, snapshot, AGENT_RUNTIME } from "./install/host-root.js";

const SSHD = "/usr/sbin/sshd";

/** One host of `cutover hosts --json`. */
type HostJson = HostView;

interface BootstrapJson {
  ok: boolean;
  hosts: { name: string; target: string; labels: Record<string, string>; result: string; detail: string | null }[];
}

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error("the bootstrap tests need root: install.sh and sshd run as root");
  if (!existsSync(SSHD)) throw new Error(`the bootstrap tests start real sshd: apt-get install openssh-server (${SSHD} is missing)`);
  await ensureAgentBundle();
});

function keygen(path: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cutover-test", "-f", path], { stdio: "ignore" });
  return readFileSync(`${path}.pub`, "utf8").trim();
}

/** A port free on `address` now. */
async function freePort(address: string): Promise<number> {
  const server = createServer().listen(0, address);
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function listening(address: string, port: number, deadline = Date.now() + 10_000): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: address, port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`sshd on ${address}:${port} did not start listening`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface SshHost {
  name: string;
  group: string;
  address: string;
  port: number;
  root: string;
}

interface SshFleet {
  hosts: SshHost[];
  /** ssh -F for the CLI: the test's known_hosts, strict checking, the test's key only. */
  sshConfig: string;
  identity: string;
  dir: string;
}

/** One sshd per host, each with its own host key, all accepting the test's one client key as root. */
async function startSshFleet(t: ExecutionContext, groups: Record<string, string[]>): Promise<SshFleet> {
  const dir = tempDir(t, "cutover-ssh-");
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation dir
  const identity = join(dir, "id_ed25519");
  writeFileSync(join(dir, "authorized_keys"), `${keygen(identity)}\n`, { mode: 0o600 });
  const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const hosts: SshHost[] = [];
  const knownHosts: string[] = [];
  let n = 11;
  for (const [group, names] of Object.entries(groups)) {
    for (const name of names) {
      const address = `${base}.${n++}`;
      const port = await freePort(address);
      const hostDir = join(dir, name);
      mkdirSync(hostDir);
      const hostKey = keygen(join(hostDir, "host_key"));
      knownHosts.push(`[${address}]:${port} ${hostKey.split(" ").slice(0, 2).join(" ")}`);
      const config = join(hostDir, "sshd_config");
      writeFileSync(config, [
        `ListenAddress ${address}:${port}`,
        `HostKey ${join(hostDir, "host_key")}`,
        `PidFile ${join(hostDir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        // The temp dirs are the test's, not a user's home: skip the home-dir mode checks.
        "StrictModes no",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "LogLevel ERROR",
        "",
      ].join("\n"));
      const sshd = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
      let said = "";
      sshd.stderr.on("data", (d: Buffer) => (said += d));
      t.teardown(() => {
        sshd.kill("SIGKILL");
      });
      await listening(address, port).catch((error: Error) => {
        throw new Error(`${error.message}: ${said}`);
      });
      hosts.push({ name, group, address, port, root: hostRoot(t) });
    }
  }
  writeFileSync(join(dir, "known_hosts"), `${knownHosts.join("\n")}\n`);
  const sshConfig = join(dir, "ssh_config");
  writeFileSync(sshConfig, ["Host *", `  UserKnownHostsFile ${join(dir, "known_hosts")}`, "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes", "  IdentitiesOnly yes", ""].join("\n"));
  return { hosts, sshConfig, identity, dir };
}

/** The INI inventory an operator would keep, plus each host's --root (the hosts share this machine). */
function writeInventory(fleet: SshFleet, portOf: (h: SshHost) => number = (h) => h.port): string {
  const lines: string[] = [];
  for (const group of [...new Set(fleet.hosts.map((h) => h.group))]) {
    lines.push(`[${group}]`);
    for (const h of fleet.hosts.filter((x) => x.group === group)) {
      lines.push(`${h.name} ansible_host=${h.address} ansible_port=${portOf(h)} cutover_address=${h.address} cutover_install_args="--root ${h.root} --no-systemd --node ${process.execPath} --nginx managed --timeout 60"`);
    }
    lines.push("");
  }
  lines.push("[all:vars]", "ansible_user=root", "");
  const file = join(fleet.dir, "inventory.ini");
  writeFileSync(file, lines.join("\n"));
  return file;
}

async function tlsCoordinator(t: ExecutionContext) {
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s", "--tls"]);
  const line = await coordinator.process.waitForLine(/^TLS certificate fingerprint sha256:/);
  return { coordinator, fingerprint: line.split(" ").at(-1)! };
}

function cli(coordinator: CoordinatorProcess, fingerprint: string, args: string[]): Promise<CliResult> {
  return runCli(args, { CUTOVER_URL: coordinator.url, CUTOVER_TOKEN: coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent", CUTOVER_FINGERPRINT: fingerprint });
}

function bootstrap(coordinator: CoordinatorProcess, fingerprint: string, fleet: SshFleet, inventory: string, extra: string[] = []): Promise<CliResult> {
  return cli(coordinator, fingerprint, ["hosts", "bootstrap", "-i", inventory, "--user", "root", "--identity", fleet.identity, "--ssh-config", fleet.sshConfig, ...extra]);
}

async function hosts(coordinator: CoordinatorProcess, fingerprint: string): Promise<HostJson[]> {
  const result = await cli(coordinator, fingerprint, ["hosts", "--json"]);
  if (result.exitCode !== 0) throw new Error(`cutover hosts failed (${result.exitCode}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as HostJson[]).sort((a, b) => a.name.localeCompare(b.name));
}

const output = (r: CliResult) => `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const GROUPS = { web: ["web-1", "web-2", "web-3"], db: ["db-1", "db-2"] };

test.serial("bootstrap of 5 hosts from an INI inventory with two groups: all online with group labels; a second run reports already enrolled and changes nothing", async (t) => {
  const { coordinator, fingerprint } = await tlsCoordinator(t);
  const fleet = await startSshFleet(t, GROUPS);
  const inventory = writeInventory(fleet);

  // --dry-run (and --limit): says what it would do, connects to no host, creates no token.
  const dry = await bootstrap(coordinator, fingerprint, fleet, inventory, ["--limit", "db", "--dry-run", "--json"]);
  t.is(dry.exitCode, 0, output(dry));
  t.deepEqual((JSON.parse(dry.stdout) as BootstrapJson).hosts.map((h) => [h.name, h.result, h.labels]), [
    ["db-1", "would enroll", { group: "db" }],
    ["db-2", "would enroll", { group: "db" }],
  ]);
  const tokens = JSON.parse((await cli(coordinator, fingerprint, ["token", "list", "--json"])).stdout) as { kind: string }[];
  t.deepEqual(tokens.filter((tk) => tk.kind === "enrollment"), [], "no enrollment token");

  const first = await bootstrap(coordinator, fingerprint, fleet, inventory);
  t.is(first.exitCode, 0, output(first));
  const table = first.stdout.trim().split("\n");
  t.regex(table[0]!, /^HOST +TARGET +LABELS +RESULT +TIME +DETAIL$/);
  for (const h of fleet.hosts) {
    t.true(table.some((row) => new RegExp(`^${h.name} +root@${h.address.replaceAll(".", "\\.")}:${h.port} +group=${h.group} +enrolled +\\d+\\.\\ds +-$`).test(row)), `${h.name} enrolled:\n${first.stdout}`);
  }
  const online = await hosts(coordinator, fingerprint);
  t.deepEqual(
    online.map((h) => [h.name, h.state, h.address, h.labels, h.pendingLabels]),
    fleet.hosts.map((h) => [h.name, "online", h.address, { group: h.group }, null]).sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );
  const pids = fleet.hosts.map((h) => agentPids(h.root));
  t.true(pids.every((p) => p.length === 1), "one agent per host");
  const trees = fleet.hosts.map((h) => snapshot(h.root, { exclude: AGENT_RUNTIME, mtimes: true }));
  const tokensBefore = (JSON.parse((await cli(coordinator, fingerprint, ["token", "list", "--json"])).stdout) as unknown[]).length;

  const second = await bootstrap(coordinator, fingerprint, fleet, inventory, ["--json"]);
  t.is(second.exitCode, 0, output(second));
  t.deepEqual((JSON.parse(second.stdout) as BootstrapJson).hosts.map((h) => [h.name, h.result, h.detail]), fleet.hosts.map((h) => [h.name, "already enrolled", "online"]));
  t.deepEqual(fleet.hosts.map((h) => snapshot(h.root, { exclude: AGENT_RUNTIME, mtimes: true })), trees, "not a file rewritten on any host");
  t.deepEqual(fleet.hosts.map((h) => agentPids(h.root)), pids, "no agent restarted");
  t.is((JSON.parse((await cli(coordinator, fingerprint, ["token", "list", "--json"])).stdout) as unknown[]).length, tokensBefore, "no token created");
});

test.serial("a host whose ssh port is wrong is reported failed, the other 4 are enrolled, and the exit code says so", async (t) => {
  const { coordinator, fingerprint } = await tlsCoordinator(t);
  const fleet = await startSshFleet(t, GROUPS);
  const wrong = await freePort(fleet.hosts[4]!.address);
  const inventory = writeInventory(fleet, (h) => (h.name === "db-2" ? wrong : h.port));

  const result = await bootstrap(coordinator, fingerprint, fleet, inventory, ["--json"]);
  t.is(result.exitCode, 1, output(result));
  const rows = (JSON.parse(result.stdout) as BootstrapJson).hosts;
  t.deepEqual(rows.map((h) => [h.name, h.result]), [
    ["web-1", "enrolled"],
    ["web-2", "enrolled"],
    ["web-3", "enrolled"],
    ["db-1", "enrolled"],
    ["db-2", "failed"],
  ]);
  t.regex(rows[4]!.detail ?? "", new RegExp(`^ssh failed \\(exit 255\\): .*port ${wrong}: Connection refused`));
  t.regex(result.stderr, /1 of 5 hosts failed: db-2/);
  t.deepEqual((await hosts(coordinator, fingerprint)).map((h) => [h.name, h.state]), [
    ["db-1", "online"],
    ["web-1", "online"],
    ["web-2", "online"],
    ["web-3", "online"],
  ]);
  t.deepEqual(agentPids(fleet.hosts[4]!.root), []);
  // db-2's token was never spent: it is revoked, not left lying about.
  const tokens = JSON.parse((await cli(coordinator, fingerprint, ["token", "list", "--json"])).stdout) as { kind: string; state: string; labels: Record<string, string> | null }[];
  t.deepEqual(tokens.filter((tk) => tk.kind === "enrollment").map((tk) => tk.state).sort(), ["revoked", "used", "used", "used", "used"]);
});
