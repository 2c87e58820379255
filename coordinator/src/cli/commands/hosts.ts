import type { Command } from "commander";
import { formatBytes } from "@cutover/log";
import type { HostView } from "../../api/hosts-view.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";

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
    ["NAME", "ADDRESS", "STATE", "LAST SEEN", "CPU", "MEM AVAIL", "DISK FREE", "LOAD", "AGENT", "LABELS"],
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
      Object.entries(h.labels).map(([k, v]) => `${k}=${v}`).join(",") || "-",
    ]),
  );
}

export function registerHosts(program: Command): void {
  program
    .command("hosts")
    .description("list every enrolled host with its state and resources")
    .option("--json", "print a JSON array")
    .action(async (options: { json?: boolean }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const hosts = await client.get<HostView[]>("/v1/hosts");
      process.stdout.write(options.json ? `${JSON.stringify(hosts, null, 2)}\n` : `${renderHosts(hosts)}\n`);
    });
}
