import type { Command } from "commander";
import type { DeploymentView } from "../../api/deployments.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";

export function renderHistory(deployments: DeploymentView[]): string {
  if (deployments.length === 0) return "no deployments yet";
  return renderTable(
    ["STARTED", "KIND", "RELEASE", "OUTCOME", "DURATION", "HOSTS", "BY", "ID"],
    deployments.map((d) => [
      d.createdAt.replace("T", " ").slice(0, 19),
      d.kind,
      d.release,
      d.state,
      d.durationMs !== null ? `${(d.durationMs / 1000).toFixed(1)}s` : "-",
      `${d.hosts.filter((h) => h.outcome === "succeeded").length}/${d.hosts.length}`,
      d.createdBy,
      d.id,
    ]),
  );
}

export function registerHistory(program: Command): void {
  program
    .command("history")
    .description("APP's deployments and rollbacks, newest first, with outcome and duration")
    .argument("<app>", "app name")
    .option("--limit <n>", "how many", "20")
    .option("--json", "print JSON")
    .action(async (app: string, options: { json?: boolean; limit: string }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const deployments = await client.get<DeploymentView[]>(`/v1/apps/${encodeURIComponent(app)}/history?limit=${Number(options.limit) || 20}`);
      process.stdout.write(options.json ? `${JSON.stringify(deployments, null, 2)}\n` : `${renderHistory(deployments)}\n`);
    });
}
