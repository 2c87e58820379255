import { createInterface } from "node:readline/promises";
import type { Command } from "commander";
import type { AppRemovalView } from "../../rollout/remove-app.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";

/** Per host, what the removal did there. */
export function renderRemoval(view: AppRemovalView): string {
  const head = view.removed
    ? `${view.app} removed from ${view.hosts.length} host(s) and forgotten by the coordinator; \`cutover history ${view.app}\` keeps its deployments`
    : `${view.app} is NOT fully removed: it failed on ${view.hosts.filter((h) => !h.ok).map((h) => h.name).join(", ")}; the coordinator still knows it — fix that and run \`cutover apps remove ${view.app}\` again`;
  if (view.hosts.length === 0) return printable(head);
  const table = renderTable(
    ["HOST", "ROLE", "RESULT", "STOPPED", "SITE", "LB SITE"],
    view.hosts.map((h) => [h.name, h.role, h.ok ? "removed" : `FAILED: ${h.error ?? ""}`, h.stoppedColors.join(",") || "-", h.siteRemoved ? "removed" : "-", h.lbSiteRemoved ? "removed" : "-"]),
  );
  return `${printable(head)}\n${table}`;
}

/** Asks on the terminal; true only when the operator types the app's name. */
async function confirmed(app: string): Promise<boolean> {
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await prompt.question(
      `This stops ${app} on every host that runs it (both colors), removes its nginx and load-balancer sites, and forgets it (its history is kept).\nType the app's name to remove it: `,
    );
    return answer.trim() === app;
  } finally {
    prompt.close();
  }
}

export function registerApps(program: Command): void {
  const apps = program.command("apps").description("the apps the coordinator knows, and (admin) removing one from the fleet");
  const clientOf = (command: Command) => new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
  apps
    .command("list", { isDefault: true })
    .description("the apps the coordinator knows (the default)")
    .option("--json", "print a JSON array of names")
    .action(async (options: { json?: boolean }, command: Command) => {
      const names = await clientOf(command).get<string[]>("/v1/apps");
      process.stdout.write(options.json ? `${JSON.stringify(names)}\n` : `${names.length > 0 ? names.map(printable).join("\n") : "no app deployed yet"}\n`);
    });
  apps
    .command("remove <app>")
    .description("stop APP on every host (both colors), remove its nginx and load-balancer sites, forget it; history and audit are kept (admin)")
    .option("--yes", "do not ask (needed when not on a terminal)")
    .option("--json", "print {app, removed, hosts: [{name, role, ok, stoppedColors, siteRemoved, lbSiteRemoved, error}]}")
    .action(async (app: string, options: { yes?: boolean; json?: boolean }, command: Command) => {
      if (!options.yes) {
        if (!process.stdin.isTTY || !process.stderr.isTTY) throw new ExitError(`removing ${app} takes it away from its users: pass --yes (not on a terminal, nobody can be asked)`, EXIT.usage);
        if (!(await confirmed(app))) throw new ExitError(`not removed: the name typed was not ${app}`, EXIT.usage);
      }
      const view = await clientOf(command).post<AppRemovalView>(`/v1/apps/${encodeURIComponent(app)}/remove`, {});
      process.stdout.write(options.json ? `${JSON.stringify(view, null, 2)}\n` : `${renderRemoval(view)}\n`);
      if (!view.removed) throw new ExitError(`${app} was not removed from ${view.hosts.filter((h) => !h.ok).map((h) => h.name).join(", ")}; run \`cutover apps remove ${app}\` again`, EXIT.failed);
    });
}
