import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { isValidLabel, isValidName, LABEL_RULE, NAME_RULE } from "@cutover/protocol";
import type { HostView } from "../../api/hosts-view.js";
import type { InstallerManifest } from "../../installer/agent-bundle.js";
import { parseInventory, limitHosts, InventoryError, type InventoryHost } from "../bootstrap/inventory.js";
import { destination, installCommand, MAKE_REMOTE_DIR, scpArgv, sshArgv, sshTarget, type SshTarget } from "../bootstrap/ssh-commands.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";
import { installerManifest } from "./hosts-join.js";

const DEFAULT_FORKS = 20;
/** How long one host's ssh, scp or installer run may take. */
const STEP_TIMEOUT_MS = 5 * 60 * 1000;
/** After install.sh said online: how long the coordinator has to show it so. */
const ONLINE_TIMEOUT_MS = 30 * 1000;
const POLL_MS = 500;

/** A host's outcome: a closed set, one per row of the table. */
export type BootstrapResult = "enrolled" | "already enrolled" | "failed" | "would enroll";

export interface BootstrapRow {
  name: string;
  /** user@host:port as ssh reaches it. */
  target: string;
  labels: Record<string, string>;
  result: BootstrapResult;
  /** Why it failed, or what the record says of an enrolled host. */
  detail: string | null;
  durationMs: number;
}

/** What a host becomes in the fleet: named as in the inventory, labelled `group=` its first group plus `cutover_labels`. */
export interface PlannedHost {
  host: InventoryHost;
  target: SshTarget;
  labels: Record<string, string>;
  address: string | undefined;
  /** install.sh flags from `cutover_install_args` (e.g. --nginx managed). */
  installArgs: string[];
}

export function planHost(host: InventoryHost, defaults: { user?: string; identity?: string; config?: string }): PlannedHost {
  if (!isValidName(host.name)) throw new InventoryError(`${host.name}: not a fleet host name (${NAME_RULE}); rename it in the inventory`);
  const labels: Record<string, string> = {};
  if (host.groups[0] !== undefined) labels.group = host.groups[0];
  for (const pair of (host.vars.cutover_labels ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new InventoryError(`${host.name}: cutover_labels "${pair}" is not key=value`);
    labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  for (const [key, value] of Object.entries(labels)) {
    if (!isValidLabel(key, value)) throw new InventoryError(`${host.name}: label ${key}=${value} is invalid (${LABEL_RULE})`);
  }
  let target: SshTarget;
  try {
    target = sshTarget(host, defaults);
  } catch (error) {
    throw new InventoryError((error as Error).message);
  }
  return { host, target, labels, address: host.vars.cutover_address, installArgs: (host.vars.cutover_install_args ?? "").split(/\s+/).filter(Boolean) };
}

const labelList = (labels: Record<string, string>) => Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");

export function renderBootstrap(rows: BootstrapRow[]): string {
  return renderTable(
    ["HOST", "TARGET", "LABELS", "RESULT", "TIME", "DETAIL"],
    rows.map((r) => [r.name, r.target, labelList(r.labels) || "-", r.result, r.result === "would enroll" ? "-" : `${(r.durationMs / 1000).toFixed(1)}s`, printable(r.detail ?? "-")]),
  );
}

interface StepResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one argv (ssh or scp) to its end, killed after STEP_TIMEOUT_MS; never throws. */
function run(argv: string[]): Promise<StepResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(${argv[0]} killed after ${STEP_TIMEOUT_MS / 1000}s)`;
      child.kill("SIGKILL");
    }, STEP_TIMEOUT_MS);
    child.once("error", (error) => {
      clearTimeout(timer);
      resolve({ exitCode: null, stdout, stderr: `${argv[0]}: ${error.message}` });
    });
    child.once("close", (exitCode) => {
      clearTimeout(timer);
      resolve({ exitCode, stdout, stderr });
    });
  });
}

/** The failing step's own last words: ssh's "Connection refused", install.sh's "error: …". */
function lastWords(step: string, result: StepResult): string {
  const lines = `${result.stderr}\n${result.stdout}`.split("\n").map((l) => l.trim()).filter(Boolean);
  const error = lines.filter((l) => /error|refused|denied|failed|not |No route|timed out|killed/i.test(l)).at(-1) ?? lines.at(-1) ?? "no output";
  return `${step} failed (exit ${result.exitCode ?? "none"}): ${error}`;
}

class StepFailed extends Error {}

async function step(name: string, argv: string[]): Promise<string> {
  const result = await run(argv);
  if (result.exitCode !== 0) throw new StepFailed(lastWords(name, result));
  return result.stdout;
}

/** Up to `forks` at once, results in input order. */
async function pool<T, R>(items: T[], forks: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(forks, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

interface BootstrapOptions {
  inventory: string;
  limit?: string;
  forks: string;
  user?: string;
  identity?: string;
  sshConfig?: string;
  coordinator?: string;
  dryRun?: boolean;
  json?: boolean;
}

/** install.sh and the bundle as the coordinator serves them, in a local temp dir; the bundle's sha256 checked against the manifest. */
async function fetchInstaller(client: ApiClient, manifest: InstallerManifest, dir: string): Promise<{ installSh: string; bundle: string }> {
  const save = async (path: string, file: string) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of (await client.stream(path)) as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    writeFileSync(join(dir, file), bytes, { mode: 0o600 });
    return bytes;
  };
  await save("/install.sh", "install.sh");
  const bundle = await save("/v1/agent/bundle", "cutover-agent.mjs");
  const sha256 = createHash("sha256").update(bundle).digest("hex");
  if (sha256 !== manifest.bundle.sha256) throw new ExitError(`the coordinator's agent bundle changed while it was being downloaded (sha256 ${sha256}, manifest ${manifest.bundle.sha256}): run bootstrap again`, EXIT.failed);
  return { installSh: join(dir, "install.sh"), bundle: join(dir, "cutover-agent.mjs") };
}

export function registerHostsBootstrap(hosts: Command): void {
  hosts
    .command("bootstrap")
    .description("install and enroll the agent on every host of an Ansible inventory over the system ssh/scp, a fresh token per host; prints a result per host (admin)")
    .requiredOption("-i, --inventory <file>", "Ansible inventory, INI or YAML (.yml/.yaml); groups become the label group=NAME")
    .option("--limit <groups>", "only the hosts of these groups or with these names (comma-separated)")
    .option("--forks <n>", "hosts bootstrapped at once", String(DEFAULT_FORKS))
    .option("--user <user>", "ssh user where the inventory sets no ansible_user")
    .option("--identity <key>", "ssh private key (ssh -i) where the inventory sets no ansible_ssh_private_key_file")
    .option("--ssh-config <file>", "ssh/scp -F FILE instead of ~/.ssh/config")
    .option("--coordinator <url>", "the coordinator's URL as hosts reach it (default: this CLI's --url / CUTOVER_URL)")
    .option("--dry-run", "say what would be done per host; connect to none, create no token")
    .option("--json", "print {ok, hosts: [{name, target, labels, result, detail, durationMs}]}")
    .action(async (options: BootstrapOptions, command: Command) => {
      const forks = Number(options.forks);
      if (!Number.isInteger(forks) || forks < 1) throw new ExitError(`--forks must be a whole number above 0, got "${options.forks}"`, EXIT.usage);
      const settings = resolveClientSettings(command.optsWithGlobals<GlobalOptions>());
      const coordinatorUrl = (options.coordinator ?? settings.url).replace(/\/+$/, "");
      let planned: PlannedHost[];
      try {
        const inventory = parseInventory(readFileSync(options.inventory, "utf8"), options.inventory);
        planned = limitHosts(inventory, options.limit).map((h) => planHost(h, { user: options.user, identity: options.identity, config: options.sshConfig }));
      } catch (error) {
        if (error instanceof InventoryError || (error as NodeJS.ErrnoException).code === "ENOENT") throw new ExitError((error as Error).message, EXIT.usage);
        throw error;
      }
      if (planned.length === 0) throw new ExitError(`${options.inventory}: no hosts${options.limit ? ` in --limit ${options.limit}` : ""}`, EXIT.usage);

      const client = new ApiClient(settings);
      const manifest = await installerManifest(client, settings);
      const enrolled = new Map((await client.get<HostView[]>("/v1/hosts")).map((h) => [h.name, h]));
      const targetText = (t: SshTarget) => `${destination(t)}${t.port ? `:${t.port}` : ""}`;
      const progress = (row: BootstrapRow) => {
        if (!options.json) process.stderr.write(`${printable(`bootstrap: ${row.name} ${row.result}${row.detail ? `: ${row.detail}` : ""}`)}\n`);
      };
      const local = options.dryRun ? undefined : mkdtempSync(join(tmpdir(), "cutover-bootstrap-"));
      try {
        const files = local ? await fetchInstaller(client, manifest, local) : undefined;
        const rows = await pool(planned, forks, async (plan): Promise<BootstrapRow> => {
          const started = Date.now();
          const row = (result: BootstrapResult, detail: string | null): BootstrapRow => ({ name: plan.host.name, target: targetText(plan.target), labels: plan.labels, result, detail, durationMs: Date.now() - started });
          const known = enrolled.get(plan.host.name);
          if (known) {
            // Never touched: its agent holds its key, and a fresh token would not be needed.
            const differs = labelList(known.labels) !== labelList(plan.labels) ? `; labels ${labelList(known.labels) || "-"} (\`cutover hosts label\` to change)` : "";
            const done = row("already enrolled", `${known.state}${differs}`);
            progress(done);
            return done;
          }
          if (!files) return row("would enroll", `ssh ${targetText(plan.target)}${plan.target.become ? " (sudo)" : ""}, install.sh with a new token`);
          let tokenId: string | undefined;
          try {
            const token = await client.post<{ token: string; id: string }>("/v1/tokens/enrollment", { labels: labelList(plan.labels) || undefined, address: plan.address });
            tokenId = token.id;
            const dir = (await step("ssh", sshArgv(plan.target, MAKE_REMOTE_DIR))).trim();
            if (!/^\/tmp\/cutover-bootstrap\.[A-Za-z0-9]+$/.test(dir)) throw new StepFailed(`ssh: the host answered "${dir.slice(0, 80)}" for a temp dir`);
            await step("scp", scpArgv(plan.target, [files.installSh, files.bundle], dir));
            const installArgs = [
              "--coordinator", coordinatorUrl,
              ...(manifest.tls ? ["--pin", manifest.tls.fingerprint] : []),
              "--token", token.token,
              "--name", plan.host.name,
              ...(Object.keys(plan.labels).length > 0 ? ["--labels", labelList(plan.labels)] : []),
              ...(plan.address ? ["--address", plan.address] : []),
              "--agent-file", `${dir}/cutover-agent.mjs`,
              "--coordinator-key", manifest.publicKey,
              "--agent-signature", manifest.bundle.signature,
              ...plan.installArgs,
            ];
            await step("install.sh", sshArgv(plan.target, installCommand(plan.target, dir, installArgs)));
            await waitOnline(client, plan.host.name);
            const done = row("enrolled", null);
            progress(done);
            return done;
          } catch (error) {
            // A token no host spent is revoked; one that was spent stays, and the record shows the host.
            if (tokenId) await client.post(`/v1/tokens/${encodeURIComponent(tokenId)}/revoke`, {}).catch(() => undefined);
            const failed = row("failed", error instanceof StepFailed || error instanceof ExitError ? error.message : String(error));
            progress(failed);
            return failed;
          }
        });
        const failed = rows.filter((r) => r.result === "failed");
        process.stdout.write(options.json ? `${JSON.stringify({ ok: failed.length === 0, hosts: rows }, null, 2)}\n` : `${renderBootstrap(rows)}\n`);
        if (failed.length > 0) throw new ExitError(`${failed.length} of ${rows.length} hosts failed: ${failed.map((r) => r.name).join(", ")}`, EXIT.failed);
      } finally {
        if (local) rmSync(local, { recursive: true, force: true });
      }
    });
}

/** The coordinator shows the host online (install.sh has already seen its agent say so). */
async function waitOnline(client: ApiClient, name: string): Promise<void> {
  const deadline = Date.now() + ONLINE_TIMEOUT_MS;
  for (;;) {
    const host = (await client.get<HostView[]>("/v1/hosts")).find((h) => h.name === name);
    if (host?.state === "online") return;
    if (Date.now() > deadline) throw new StepFailed(`install.sh succeeded but the coordinator shows ${name} ${host ? host.state : "not enrolled"} after ${ONLINE_TIMEOUT_MS / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
