// Hosts reached over real sshd, for `cutover hosts bootstrap` (its e2e and its benchmark): one
// sshd per "host" on its own 127.x.y.z address, with its own host key, one authorized client key
// and a known_hosts file written here (host keys are checked, never skipped), so the system ssh
// and scp run as an operator's would. Each host installs into its own --root dir with
// --no-systemd, as the hosts share this machine.
import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { hostRoot } from "../install/host-root.js";
import { startCoordinator, type CoordinatorProcess, type TestContext } from "./fleet.js";
import { runCli, tempDir, type CliResult } from "./processes.js";

export const SSHD = "/usr/sbin/sshd";

/** How long a fresh sshd may take to listen (a busy 2-core machine starting 20 at once). */
const SSHD_LISTEN_MS = 10_000;

type Context = TestContext & { teardown(fn: () => void): void };

function keygen(path: string): string {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "cutover-test", "-f", path], { stdio: "ignore" });
  return readFileSync(`${path}.pub`, "utf8").trim();
}

/** A port free on `address` now. */
export async function freePort(address: string): Promise<number> {
  const server = createServer().listen(0, address);
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function listening(address: string, port: number, deadline = Date.now() + SSHD_LISTEN_MS): Promise<void> {
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

export interface SshHost {
  name: string;
  group: string;
  address: string;
  port: number;
  /** The host's install.sh --root (a fresh hostRoot; its teardown stops the agent installed in it). */
  root: string;
}

export interface SshFleet {
  hosts: SshHost[];
  /** ssh -F for the CLI: the fleet's known_hosts, strict checking, the fleet's key only. */
  sshConfig: string;
  knownHosts: string;
  identity: string;
  dir: string;
}

/** One sshd per host, each with its own host key, all accepting the fleet's one client key as root; killed at teardown. */
export async function startSshFleet(t: Context, groups: Record<string, string[]>): Promise<SshFleet> {
  const dir = tempDir(t, "cutover-ssh-");
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation dir
  const identity = join(dir, "id_ed25519");
  writeFileSync(join(dir, "authorized_keys"), `${keygen(identity)}\n`, { mode: 0o600 });
  const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const planned: Omit<SshHost, "port" | "root">[] = [];
  let n = 11;
  for (const [group, names] of Object.entries(groups)) {
    for (const name of names) planned.push({ name, group, address: `${base}.${n++}` });
  }
  // Started all at once: ssh-keygen and sshd's start are most of the wait.
  const started = await Promise.all(planned.map((host) => startSshd(t, dir, host)));
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `${started.map((s) => s.knownHost).join("\n")}\n`);
  const sshConfig = join(dir, "ssh_config");
  writeFileSync(sshConfig, ["Host *", `  UserKnownHostsFile ${knownHosts}`, "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes", "  IdentitiesOnly yes", ""].join("\n"));
  return { hosts: started.map((s) => s.host), sshConfig, knownHosts, identity, dir };
}

async function startSshd(t: Context, dir: string, host: Omit<SshHost, "port" | "root">): Promise<{ host: SshHost; knownHost: string }> {
  const port = await freePort(host.address);
  const hostDir = join(dir, host.name);
  mkdirSync(hostDir);
  const hostKey = keygen(join(hostDir, "host_key"));
  const config = join(hostDir, "sshd_config");
  writeFileSync(config, [
    `ListenAddress ${host.address}:${port}`,
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
    // A test host's home is its own dir, as on a fresh machine: not this machine's root, whose
    // .bashrc (pyenv init here) would run in every session and measure this machine's shell.
    `SetEnv HOME=${hostDir}`,
    "LogLevel ERROR",
    "",
  ].join("\n"));
  const sshd = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
  let said = "";
  sshd.stderr.on("data", (d: Buffer) => (said += d));
  t.teardown(() => {
    sshd.kill("SIGKILL");
  });
  await listening(host.address, port).catch((error: Error) => {
    throw new Error(`${error.message}: ${said}`);
  });
  return { host: { ...host, port, root: hostRoot(t) }, knownHost: `[${host.address}]:${port} ${hostKey.split(" ").slice(0, 2).join(" ")}` };
}

/** install.sh's flags for one host of this machine: its own --root, no systemd, this node, a managed nginx. */
export function installArgs(host: SshHost): string {
  return `--root ${host.root} --no-systemd --node ${process.execPath} --nginx managed --timeout 60`;
}

/**
 * The INI inventory an operator would keep (groups, ansible_host/port, ansible_user=root), plus
 * each host's cutover_address and --root; `vars` adds host variables (e.g. a token for a play).
 */
export function writeInventory(fleet: SshFleet, options: { file?: string; portOf?: (h: SshHost) => number; vars?: (h: SshHost) => Record<string, string> } = {}): string {
  const portOf = options.portOf ?? ((h: SshHost) => h.port);
  const lines: string[] = [];
  for (const group of [...new Set(fleet.hosts.map((h) => h.group))]) {
    lines.push(`[${group}]`);
    for (const h of fleet.hosts.filter((x) => x.group === group)) {
      const more = Object.entries(options.vars?.(h) ?? {}).map(([k, v]) => ` ${k}=${v}`).join("");
      lines.push(`${h.name} ansible_host=${h.address} ansible_port=${portOf(h)} cutover_address=${h.address} cutover_install_args="${installArgs(h)}"${more}`);
    }
    lines.push("");
  }
  lines.push("[all:vars]", "ansible_user=root", "");
  const file = options.file ?? join(fleet.dir, "inventory.ini");
  writeFileSync(file, lines.join("\n"));
  return file;
}

/** A coordinator serving TLS (what bootstrap pins), and its certificate's fingerprint. */
export async function tlsCoordinator(t: Context): Promise<{ coordinator: CoordinatorProcess; fingerprint: string }> {
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s", "--tls"]);
  const line = await coordinator.process.waitForLine(/^TLS certificate fingerprint sha256:/);
  return { coordinator, fingerprint: line.split(" ").at(-1)! };
}

/** The CLI against a TLS coordinator, pinning its fingerprint. */
export function pinnedCli(coordinator: CoordinatorProcess, fingerprint: string, args: string[]): Promise<CliResult> {
  return runCli(args, { CUTOVER_URL: coordinator.url, CUTOVER_TOKEN: coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent", CUTOVER_FINGERPRINT: fingerprint });
}

/** `cutover hosts bootstrap -i INVENTORY` as root with the fleet's key and ssh config. */
export function bootstrap(coordinator: CoordinatorProcess, fingerprint: string, fleet: SshFleet, inventory: string, extra: string[] = []): Promise<CliResult> {
  return pinnedCli(coordinator, fingerprint, ["hosts", "bootstrap", "-i", inventory, "--user", "root", "--identity", fleet.identity, "--ssh-config", fleet.sshConfig, ...extra]);
}
