// `cutover hosts bootstrap -i inventory.ini` over real sshd: one sshd per "host" on its own
// 127.0.0.x address (its own host key, one authorized key, a known_hosts file the test writes:
// host keys are checked, never skipped), the system ssh and scp, and install.sh installing each
// host into its own --root dir with --no-systemd (the hosts share this machine).
import { existsSync } from "node:fs";
import test from "ava";
import type { HostView } from "@cutover/coordinator";
import type { CoordinatorProcess } from "./harness/fleet.js";
import type { CliResult } from "./harness/processes.js";
import { bootstrap, freePort, pinnedCli as cli, SSHD, startSshFleet, tlsCoordinator, writeInventory } from "./harness/ssh-fleet.js";
import { ensureAgentBundle } from "./install/bundle.js";
import { agentPids, snapshot, AGENT_RUNTIME } from "./install/host-root.js";

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
  const inventory = writeInventory(fleet, { portOf: (h) => (h.name === "db-2" ? wrong : h.port) });

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
