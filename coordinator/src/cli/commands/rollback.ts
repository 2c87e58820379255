import type { Command } from "commander";
import type { DeploymentView } from "../../api/deployments.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { reportDeployment } from "./deploy.js";

export function registerRollback(program: Command): void {
  program
    .command("rollback")
    .description("switch every host running APP back to its previous release (one switch where the old color is still warm)")
    .argument("<app>", "app name")
    .option("--json", "print one JSON object at the end instead of progress")
    .action(async (app: string, options: { json?: boolean }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const created = await client.post<DeploymentView>(`/v1/apps/${encodeURIComponent(app)}/rollback`, {});
      await reportDeployment(client, created, options.json);
    });
}
