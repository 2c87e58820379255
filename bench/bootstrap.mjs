// Putting the agent on a fleet: `cutover hosts bootstrap -i INVENTORY --forks 20` against 20
// hosts, each a real sshd on its own loopback address (its own host key, one authorized key,
// known_hosts checked), timed from the command's start until all 20 are online at a real
// coordinator. Then, when `ansible-playbook` is on PATH, the play a team runs today on the same
// sshd hosts (fresh install roots, a fresh coordinator): copy the same install.sh and bundle,
// run the installer with a token per host (created beforehand, as by hand, and timed apart),
// until all 20 are online. Every host installs into its own --root with --no-systemd, as
// they share this machine. Traffic stays on loopback.
//
//   npm run bench -- bootstrap [--hosts=20] [--forks=20] [--ansible-timeout=900]
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { accessSync, constants, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { get } from "node:https";
import { delimiter, join } from "node:path";
import { benchContext, conditions, fmt, option, table, writeResult } from "./_lib.mjs";
import { alive } from "./_proc.mjs";

const { startSshFleet, writeInventory, installArgs, tlsCoordinator, bootstrap, pinnedCli } = await import("../test/dist/harness/ssh-fleet.js");
const { tempDir, outputOf } = await import("../test/dist/harness/processes.js");
const { ensureAgentBundle } = await import("../test/dist/install/bundle.js");
const { hostRoot, stopInstalledAgent, INSTALL_SH } = await import("../test/dist/install/host-root.js");
const { median, quantile } = await import("../packages/testkit/dist/index.js");

/** How long the play may run before it is stopped and the bench fails saying so. */
const ANSIBLE_TIMEOUT_S = 900;
/** After install.sh said online, how long the coordinator may take to show a host so. */
const ONLINE_WAIT_MS = 30_000;

/** The inventory's hosts: two groups, as a fleet has (web and db), so labels are checked too. */
function groups(count) {
  const names = Array.from({ length: count }, (_, i) => `host-${String(i + 1).padStart(2, "0")}`);
  const half = Math.ceil(count / 2);
  return { web: names.slice(0, half), db: names.slice(half) };
}

function onPath(program) {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** GET a coordinator path over https, the certificate checked against the fingerprint it printed. */
function pinnedGet(url, path, fingerprint) {
  return new Promise((resolve, reject) => {
    const request = get(new URL(path, url), { rejectUnauthorized: false, agent: false }, (response) => {
      const cert = response.socket.getPeerCertificate();
      if (`sha256:${cert.fingerprint256}` !== fingerprint) {
        response.destroy();
        reject(new Error(`${url} presented certificate sha256:${cert.fingerprint256}, not ${fingerprint}`));
        return;
      }
      const chunks = [];
      response.on("data", (c) => chunks.push(c));
      response.on("end", () => (response.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(`GET ${path}: ${response.statusCode}`))));
    });
    request.on("error", reject);
  });
}

async function hostStates(coordinator, fingerprint) {
  const result = await pinnedCli(coordinator, fingerprint, ["hosts", "--json"]);
  if (result.exitCode !== 0) throw new Error(`cutover hosts failed (${result.exitCode}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** Resolves when the coordinator shows every one of `names` online with its group label; throws what it shows at the deadline. */
async function allOnline(coordinator, fingerprint, fleet) {
  const deadline = Date.now() + ONLINE_WAIT_MS;
  for (;;) {
    const hosts = await hostStates(coordinator, fingerprint);
    const wrong = fleet.hosts.filter((h) => {
      const seen = hosts.find((x) => x.name === h.name);
      return !(seen?.state === "online" && seen.labels.group === h.group);
    });
    if (wrong.length === 0) return;
    if (Date.now() > deadline) throw new Error(`not online with their group label: ${wrong.map((h) => `${h.name} (${hosts.find((x) => x.name === h.name)?.state ?? "not enrolled"})`).join(", ")}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function runCutover(ctx, fleet, forks) {
  const { coordinator, fingerprint } = await tlsCoordinator(ctx);
  const inventory = writeInventory(fleet);
  const started = performance.now();
  const result = await bootstrap(coordinator, fingerprint, fleet, inventory, ["--forks", String(forks), "--json"]);
  const ms = performance.now() - started;
  if (result.exitCode !== 0) throw new Error(`cutover hosts bootstrap exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
  const rows = JSON.parse(result.stdout).hosts;
  const notEnrolled = rows.filter((r) => r.result !== "enrolled");
  if (notEnrolled.length > 0) throw new Error(`not enrolled: ${notEnrolled.map((r) => `${r.name} ${r.result} ${r.detail}`).join("; ")}`);
  // bootstrap itself waits for each host to show online; this checks it, untimed.
  await allOnline(coordinator, fingerprint, fleet);
  await coordinator.process.kill("SIGTERM");
  const perHost = rows.map((r) => r.durationMs);
  return { ms, perHostMs: { median: median(perHost), max: Math.max(...perHost) } };
}

/** The play: the same two files copied to each host, the installer run with the host's token (install.sh starts the agent and waits until it is online). */
function playbook(manifest, coordinatorUrl, bundle, hostsDir) {
  const installer = [
    "bash {{ dir }}/install.sh",
    `--coordinator ${coordinatorUrl}`,
    `--pin ${manifest.tls.fingerprint}`,
    "--token {{ cutover_token }}",
    "--name {{ inventory_hostname }}",
    "--labels group={{ group_names[0] }}",
    "--address {{ cutover_address }}",
    "--agent-file {{ dir }}/cutover-agent.mjs",
    `--coordinator-key ${manifest.publicKey}`,
    `--agent-signature ${manifest.bundle.signature}`,
    "{{ cutover_install_args }}",
  ].join(" ");
  return `- name: install the cutover agent
  hosts: all
  gather_facts: false
  vars:
    # The hosts share this machine: each gets its own directory for the two files.
    dir: "${hostsDir}/{{ inventory_hostname }}"
  tasks:
    - name: a directory for install.sh and the bundle
      ansible.builtin.file: { path: "{{ dir }}", state: directory, mode: "0700" }
    - name: install.sh
      ansible.builtin.copy: { src: "${INSTALL_SH}", dest: "{{ dir }}/install.sh", mode: "0755" }
    - name: the agent bundle
      ansible.builtin.copy: { src: "${bundle}", dest: "{{ dir }}/cutover-agent.mjs", mode: "0644" }
    - name: run the installer (starts the agent, waits until it is online)
      ansible.builtin.command: ${JSON.stringify(installer)}
    - name: remove the two files
      ansible.builtin.file: { path: "{{ dir }}", state: absent }
`;
}

/** ssh control masters Ansible left running (ControlPersist), found by their control path dir and killed by pid. */
function stopControlMasters(controlDir) {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(controlDir) && alive(Number(entry))) process.kill(Number(entry), "SIGTERM");
    } catch {
      // gone meanwhile
    }
  }
}

async function runAnsible(ctx, sshFleet, forks, bundle, timeoutS) {
  // Fresh install roots on the same sshd hosts, and a fresh coordinator: nothing is enrolled yet.
  const fleet = { ...sshFleet, hosts: sshFleet.hosts.map((h) => ({ ...h, root: hostRoot(ctx) })) };
  const { coordinator, fingerprint } = await tlsCoordinator(ctx);
  const manifest = JSON.parse((await pinnedGet(coordinator.url, "/v1/agent/bundle/manifest", fingerprint)).toString("utf8"));
  const sha256 = (file) => createHash("sha256").update(readFileSync(file)).digest("hex");
  if (sha256(bundle) !== manifest.bundle.sha256 || sha256(INSTALL_SH) !== manifest.installer.sha256) throw new Error("the play's files are not the ones the coordinator serves");

  // What an operator does by hand before the play: one enrollment token per host.
  const tokensStarted = performance.now();
  const tokens = new Map();
  for (const h of fleet.hosts) {
    const created = await pinnedCli(coordinator, fingerprint, ["token", "create", "--labels", `group=${h.group}`, "--address", h.address]);
    if (created.exitCode !== 0) throw new Error(`token create failed: ${created.stderr}`);
    tokens.set(h.name, created.stdout.trim());
  }
  const tokensMs = performance.now() - tokensStarted;

  const dir = tempDir(ctx, "cutover-bench-ansible-");
  const controlDir = join(dir, "cp");
  const hostsDir = join(dir, "hosts");
  for (const d of [controlDir, hostsDir, join(dir, "home"), join(dir, "local"), join(dir, "remote")]) mkdirSync(d);
  ctx.teardown(() => stopControlMasters(controlDir));
  const inventory = writeInventory(fleet, { file: join(dir, "inventory.ini"), vars: (h) => ({ cutover_token: tokens.get(h.name) }) });
  const play = join(dir, "install-agent.yml");
  writeFileSync(play, playbook(manifest, coordinator.url, bundle, hostsDir));
  // Ansible's defaults but for what this machine needs (its own ssh config and temp dirs), with pipelining on (fewer round trips, as tuned setups run it).
  const config = join(dir, "ansible.cfg");
  writeFileSync(config, [
    "[defaults]",
    "host_key_checking = True",
    "interpreter_python = /usr/bin/python3",
    `local_tmp = ${join(dir, "local")}`,
    `remote_tmp = ${join(dir, "remote")}`,
    "retry_files_enabled = False",
    "[ssh_connection]",
    `ssh_args = -F ${fleet.sshConfig} -o ControlMaster=auto -o ControlPersist=60s`,
    `control_path_dir = ${controlDir}`,
    "pipelining = True",
    "",
  ].join("\n"));
  const env = { ...process.env, ANSIBLE_CONFIG: config, ANSIBLE_HOME: join(dir, "home"), ANSIBLE_NOCOLOR: "1" };
  const started = performance.now();
  // In a process group of its own: its forks are stopped with it, at the deadline or when the bench ends early.
  const child = spawn("ansible-playbook", ["-i", inventory, "--forks", String(forks), "--private-key", fleet.identity, play], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const stopPlay = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // ended already
    }
  };
  ctx.teardown(stopPlay);
  const deadline = setTimeout(stopPlay, timeoutS * 1000);
  const result = await outputOf(child).finally(() => clearTimeout(deadline));
  if (result.exitCode !== 0) {
    const why = result.exitCode === null ? `did not finish within ${timeoutS} s (--ansible-timeout) and was stopped` : `exited ${result.exitCode}`;
    throw new Error(`ansible-playbook ${why}:\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`);
  }
  await allOnline(coordinator, fingerprint, fleet);
  const ms = performance.now() - started;
  stopControlMasters(controlDir);
  await coordinator.process.kill("SIGTERM");
  const version = execFileSync("ansible-playbook", ["--version"], { encoding: "utf8", env }).split("\n")[0].trim();
  return { ms, tokensMs, version };
}

export async function run(args) {
  const count = option(args, "hosts", 20);
  const forks = option(args, "forks", 20);
  const ansible = onPath("ansible-playbook");
  console.log(`\n== bootstrap: the agent onto ${count} hosts over real sshd on loopback (install.sh --no-systemd into a root dir per host, managed nginx), --forks ${forks}`);
  const ctx = benchContext();
  let cutover;
  let play = null;
  try {
    const bundle = await ensureAgentBundle();
    const fleet = await startSshFleet(ctx, groups(count));
    cutover = await runCutover(ctx, fleet, forks);
    console.log(`cutover hosts bootstrap: all ${count} online in ${fmt(cutover.ms / 1000, 2)} s`);
    if (ansible) {
      // Its agents stopped first, so the play's hosts run on a machine no busier than bootstrap's did.
      for (const h of fleet.hosts) stopInstalledAgent(h.root);
      play = await runAnsible(ctx, fleet, forks, bundle, option(args, "ansible-timeout", ANSIBLE_TIMEOUT_S));
    }
  } finally {
    await ctx.close();
  }
  const rows = [[`cutover hosts bootstrap --forks ${forks}`, count, fmt(cutover.ms / 1000, 2), fmt(cutover.perHostMs.median / 1000, 2), fmt(cutover.perHostMs.max / 1000, 2), "(bootstrap makes them)"]];
  if (play) rows.push([`ansible-playbook --forks ${forks} (${play.version})`, count, fmt(play.ms / 1000, 2), "-", "-", `${fmt(play.tokensMs / 1000, 2)} s (${count}x cutover token create)`]);
  console.log(table(["run", "hosts", "until all online s", "per host s median", "per host s max", "tokens"], rows));
  console.log(
    "until all online = from the command's start until the coordinator shows every host online with its group label; per host = bootstrap's own\n" +
      "row time (token, ssh mktemp, scp of the two files, install.sh until the agent is online, the coordinator showing it). The play copies the\n" +
      "same files with the same installer flags and pipelining on; its tokens are made beforehand, one CLI call each, as an operator would.",
  );
  if (!ansible) console.log("ansible-playbook is not on PATH: the Ansible play was not run (apt-get install ansible to compare)");
  else console.log(`the play took ${fmt(play.ms / cutover.ms, 2)}x bootstrap's time (its token making not counted; ${fmt((play.ms + play.tokensMs) / cutover.ms, 2)}x with it)`);
  const measured = conditions({ hosts: count, forks, ansible: play?.version ?? null });
  console.log(`conditions: commit ${measured.commit}, ${measured.cores} cores (${measured.cpu}), load average ${fmt(measured.loadavg1m, 2)} (1 min, other work included), node ${measured.node}`);
  writeResult("bootstrap", { conditions: measured, cutover, ansible: play });
  return true;
}
