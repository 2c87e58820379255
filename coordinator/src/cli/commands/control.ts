import type { Command } from "commander";
import type { DeploymentView } from "../../api/deployments.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { reportDeployment } from "./deploy.js";

const VERBS = {
  promote: "continue a canary waiting for promotion to the rest of the fleet",
  abort: "stop APP's deployment and roll back what it changed (canaries, switched hosts, load-balancer weights)",
  pause: "stop APP's deployment before its next step",
  resume: "continue a paused deployment",
} as const;

/** promote, abort, pause, resume: one verb each, sharing how they reach the running deployment. */
export function registerControls(program: Command): void {
  for (const [verb, description] of Object.entries(VERBS)) {
    program
      .command(verb)
      .description(description)
      .argument("<app>", "app name")
      .option("--follow", "then follow the deployment to its end (exit 0 only if it succeeds)")
      .option("--json", "print JSON")
      .action(async (app: string, options: { follow?: boolean; json?: boolean }, command: Command) => {
        const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
        const deployment = await client.post<DeploymentView>(`/v1/apps/${encodeURIComponent(app)}/${verb}`, {});
        if (options.follow) return reportDeployment(client, deployment, options.json);
        process.stdout.write(options.json ? `${JSON.stringify(deployment)}\n` : `${app}: ${verb} sent; deployment ${deployment.id} is ${deployment.state}\n`);
      });
  }
}
