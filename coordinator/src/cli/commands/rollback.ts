import type { Command } from "commander";
import { isValidRelease, RELEASE_RULE } from "@cutover/protocol";
import type { DeploymentView } from "../../api/deployments.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { reportDeployment } from "./deploy.js";

export function registerRollback(program: Command): void {
  program
    .command("rollback")
    .description("switch every host running APP back to its previous release (one switch where the old color is still warm); with --to, to that kept release, as a deploy of it")
    .argument("<app>", "app name")
    .option("--to <release>", "roll back to this release (one `cutover releases APP` lists), with the spec it was deployed with")
    .option("--json", "print one JSON object at the end instead of progress")
    .action(async (app: string, options: { to?: string; json?: boolean }, command: Command) => {
      if (options.to !== undefined && !isValidRelease(options.to)) throw new ExitError(`--to must be ${RELEASE_RULE}`, EXIT.usage);
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const path = options.to === undefined ? `/v1/apps/${encodeURIComponent(app)}/rollback` : `/v1/apps/${encodeURIComponent(app)}/releases/${encodeURIComponent(options.to)}/rollback`;
      const created = await client.post<DeploymentView>(path, {});
      await reportDeployment(client, created, options.json);
    });
}
