import type { Command } from "commander";
import { formatBytes } from "@cutover/log";
import type { CordonView } from "../../api/hosts.js";
import type { HostView } from "../../api/hosts-view.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";
import { EXIT, ExitError } from "../exit-error.js";
import { printable } from "../terminal-text.js";
import { registerHostsJoin } from "./hosts-join.js";

function ago(iso: string | null, now = Date.now()): string {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

export function renderHosts(hosts: HostView[], now = Date.now()): string {
  if (hosts.length === 0) return "no hosts enrolled yet: create a token with `cutover token create` and start an agent with it";
  return renderTable(
    ["NAME", "ADDRESS", "STATE", "LAST SEEN", "CPU", "MEM AVAIL", "DISK FREE", "LOAD", "AGENT", "LABELS", "PENDING", "CORDONED"],
    hosts.map((h) => [
      h.name,
      h.address,
      h.state === "late" ? `late (${Math.round(h.heartbeatOverdueMs / 1000)}s)` : h.state,
      ago(h.lastSeen, now),
      h.resources ? `${h.resources.cpuLoadPercent.toFixed(0)}%` : "-",
      h.resources ? formatBytes(h.resources.memAvailableBytes) : "-",
      h.resources ? formatBytes(h.resources.diskFreeBytes) : "-",
      h.resources ? h.resources.loadAverage1m.toFixed(2) : "-",
      h.agentVersion || "-",
      formatLabels(h.labels),
      pendingChange(h),
      cordonedCell(h, now),
    ]),
  );
}

function formatLabels(labels: Record<string, string>): string {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",") || "-";
}

/** What the host's agent asks for that the record does not say (`cutover hosts accept` takes it). */
function pendingChange(h: HostView): string {
  const parts = [
    h.pendingLabels && `labels ${formatLabels(h.pendingLabels)}`,
    h.pendingAddress !== null && `address ${h.pendingAddress}`,
  ].filter(Boolean);
  return parts.length > 0 ? parts.join("; ") : "-";
}

/** Who cordoned the host and why (`-` when it is not cordoned). */
function cordonedCell(h: HostView, now: number): string {
  // An older coordinator sends no `cordoned`.
  if (!h.cordoned) return "-";
  return `by ${h.cordoned.by} ${ago(h.cordoned.at, now)}${h.cordoned.reason ? `: ${h.cordoned.reason}` : ""}`;
}

/** What cordon / uncordon did, one line per app load balancer; throws (exit 1) when one did not take it. */
export function renderCordon(view: CordonView, verb: "cordon" | "uncordon"): string {
  const lines = [
    verb === "cordon"
      ? `${view.host.name} cordoned${view.host.cordoned ? ` by ${view.host.cordoned.by}` : ""}: deploys leave it out, load balancers send it no new requests`
      : view.host.cordoned
        ? `${view.host.name} is still cordoned: not every load balancer took it back (run \`cutover hosts uncordon ${view.host.name}\` again)`
        : `${view.host.name} uncordoned: deploys reach it again, load balancers send it requests`,
  ];
  for (const o of view.loadBalancers) {
    const did = !o.ok ? `FAILED: ${o.error}` : verb === "uncordon" ? "back up" : o.drained === false ? "drained (in-flight requests still running at lb.drain_timeout)" : "drained";
    lines.push(`  ${o.app} at ${o.lbHost}: ${did}`);
  }
  if (view.loadBalancers.length === 0) lines.push("  (it is behind no load balancer)");
  if (verb === "uncordon" && !view.host.cordoned && view.host.instances.length > 0) {
    lines.push("  it serves the release it had when cordoned: `cutover status APP` shows it; deploy again to bring it up to date");
  }
  return lines.map(printable).join("\n");
}

/** `k=v` sets a label, `k-` removes one (as kubectl label does). */
export function parseLabelEdits(edits: string[]): { set: Record<string, string>; remove: string[] } {
  const set: Record<string, string> = {};
  const remove: string[] = [];
  for (const edit of edits) {
    if (edit.endsWith("-") && !edit.includes("=")) remove.push(edit.slice(0, -1));
    else if (edit.indexOf("=") > 0) set[edit.slice(0, edit.indexOf("="))] = edit.slice(edit.indexOf("=") + 1);
    else throw new ExitError(`"${edit}" is neither key=value (set a label) nor key- (remove one)`, EXIT.usage);
  }
  return { set, remove };
}

export function registerHosts(program: Command): void {
  const hosts = program.command("hosts").description("the fleet: list hosts, and (admin) set their labels, accept what their agents ask for, remove them");
  const clientOf = (command: Command) => new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
  hosts
    .command("list", { isDefault: true })
    .description("list every enrolled host with its state and resources (the default)")
    .option("--json", "print a JSON array")
    .action(async (options: { json?: boolean }, command: Command) => {
      const list = await clientOf(command).get<HostView[]>("/v1/hosts");
      process.stdout.write(options.json ? `${JSON.stringify(list, null, 2)}\n` : `${renderHosts(list)}\n`);
    });
  hosts
    .command("label <host> <edits...>")
    .description("set (key=value) or remove (key-) a host's labels — what app specs select hosts by (admin)")
    .action(async (host: string, edits: string[], _options: unknown, command: Command) => {
      const view = await clientOf(command).post<HostView>(`/v1/hosts/${encodeURIComponent(host)}/labels`, parseLabelEdits(edits));
      process.stdout.write(`${printable(`${view.name}: labels ${formatLabels(view.labels)}`)}\n`);
    });
  hosts
    .command("accept <host>")
    .description("take the labels and address the host's agent presents in place of its record (admin)")
    .action(async (host: string, _options: unknown, command: Command) => {
      const view = await clientOf(command).post<HostView>(`/v1/hosts/${encodeURIComponent(host)}/accept`, {});
      process.stdout.write(`${printable(`${view.name}: labels ${formatLabels(view.labels)}, address ${view.address}`)}\n`);
    });
  for (const verb of ["cordon", "uncordon"] as const) {
    const command = hosts
      .command(`${verb} <host>`)
      .description(
        verb === "cordon"
          ? "keep a host out of deploys and drain it at the front load balancers (admin; audited)"
          : "put a cordoned host back into deploys and the front load balancers (admin; audited)",
      )
      .option("--json", "print {host, loadBalancers: [{app, lbHost, ok, drained, error}]}");
    if (verb === "cordon") command.option("-m, --message <why>", "why, shown in `cutover hosts` and in every deploy that leaves it out");
    command.action(async (host: string, options: { json?: boolean; message?: string }, cmd: Command) => {
      const view = await clientOf(cmd).post<CordonView>(`/v1/hosts/${encodeURIComponent(host)}/${verb}`, verb === "cordon" ? { reason: options.message ?? "" } : {});
      process.stdout.write(options.json ? `${JSON.stringify(view, null, 2)}\n` : `${renderCordon(view, verb)}\n`);
      const incomplete = view.loadBalancers.filter((o) => !o.ok);
      if (incomplete.length > 0) {
        throw new ExitError(`${verb}: ${incomplete.map((o) => `${o.app} at ${o.lbHost}`).join(", ")} did not take it; run \`cutover hosts ${verb} ${host}\` again once they are reachable`, EXIT.failed);
      }
    });
  }
  hosts
    .command("remove <host>")
    .description("remove a host from the fleet: its agent is refused from now on, it leaves every deploy (admin)")
    .action(async (host: string, _options: unknown, command: Command) => {
      const result = await clientOf(command).post<{ removed: string }>(`/v1/hosts/${encodeURIComponent(host)}/remove`, {});
      process.stdout.write(`removed ${result.removed}: its key is refused from now on; to bring the machine back, clear the agent's state dir and enroll it with a new token\n`);
    });
  registerHostsJoin(hosts);
}
