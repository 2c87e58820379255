import type { Command } from "commander";
import type { HostReleasesView, ReleasesView } from "../../api/releases.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";

/** The KEPT cell: the host's release trees, newest first, the live one marked; or why they are not known. */
function keptCell(host: HostReleasesView): string {
  if (host.reporting === "unsupported") return "(unknown: its agent does not report kept releases)";
  if (host.reporting === "awaiting") return "(not reported yet)";
  return host.releases.map((r) => (r.live ? `${r.release} (live)` : r.release)).join(", ") || "none";
}

export function renderReleases(view: ReleasesView): string {
  if (view.hosts.length === 0) return `no host runs ${printable(view.app)}`;
  return renderTable(
    ["HOST", "STATE", "LIVE", "KEPT"],
    view.hosts.map((h) => [h.name, h.state, h.live ?? "-", keptCell(h)]),
  );
}

export function registerReleases(program: Command): void {
  program
    .command("releases")
    .description("per host, the releases of APP it keeps unpacked (newest first) and which one is live: what `rollback --to` can switch to")
    .argument("<app>", "app name")
    .option("--json", "print JSON")
    .action(async (app: string, options: { json?: boolean }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const view = await client.get<ReleasesView>(`/v1/apps/${encodeURIComponent(app)}/releases`);
      process.stdout.write(options.json ? `${JSON.stringify(view, null, 2)}\n` : `${renderReleases(view)}\n`);
    });
}
