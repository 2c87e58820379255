import type { Command } from "commander";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";
import type { DeploymentView } from "../../api/deployments.js";
import { EXIT, ExitError } from "../exit-error.js";
import { reportDeployment } from "./deploy.js";

interface AppStatus {
  app: string;
  deployment: DeploymentView | null;
  hosts: { name: string; state: string; liveColor: string | null; release: string | null; health: string }[];
  /** The latest analysis events of the running (else the last) deployment: each measurement and the verdict. */
  analysis?: string[];
}

export function renderStatus(status: AppStatus): string {
  const head = status.deployment
    ? `${status.app}: ${status.deployment.kind} ${status.deployment.release} ${status.deployment.state} (${status.deployment.id})`
    : `${status.app}: no deployment in progress`;
  const rows = status.hosts.map((h) => [h.name, h.state, h.liveColor ?? "-", h.release ?? "-", h.health]);
  const analysis = status.analysis?.length ? `\nanalysis:\n${status.analysis.map((line) => `  ${printable(line)}`).join("\n")}` : "";
  return `${printable(head)}\n${renderTable(["HOST", "STATE", "LIVE", "RELEASE", "HEALTH"], rows)}${analysis}`;
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("each host's live color, release and health for APP (every app without one)")
    .argument("[app]", "app name")
    .option("--follow", "follow APP's running deployment to its end, or show how its latest ended, as `deploy` does (exit 0 only if it succeeded)")
    .option("--json", "print JSON")
    .action(async (app: string | undefined, options: { follow?: boolean; json?: boolean }, command: Command) => {
      if (options.follow && !app) throw new ExitError("--follow needs an APP: the deployment of which app to follow", EXIT.usage);
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      if (options.follow && app) {
        // The running deployment, else the latest (the one a `deploy --detach` started may be done already).
        const [latest] = await client.get<DeploymentView[]>(`/v1/apps/${encodeURIComponent(app)}/history?limit=1`);
        if (latest) return reportDeployment(client, latest, options.json);
      }
      const names = app ? [app] : await client.get<string[]>("/v1/apps");
      const statuses = await Promise.all(names.map((name) => client.get<AppStatus>(`/v1/apps/${encodeURIComponent(name)}/status`)));
      if (options.json) {
        process.stdout.write(`${JSON.stringify(app ? statuses[0] : statuses, null, 2)}\n`);
        return;
      }
      process.stdout.write(statuses.length ? `${statuses.map(renderStatus).join("\n\n")}\n` : "no apps deployed yet\n");
    });
}
