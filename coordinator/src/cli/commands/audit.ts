import type { Command } from "commander";
import type { AuditEntry } from "../../store/audit.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";

export function renderAudit(entries: AuditEntry[]): string {
  if (entries.length === 0) return "nothing audited yet";
  return renderTable(
    ["WHEN", "WHO", "WHAT", "ON", "OUTCOME", "DETAIL"],
    entries.map((e) => [e.at.replace("T", " ").slice(0, 19), e.actor, e.action, e.target, e.outcome, e.detail]),
  );
}

export function registerAudit(program: Command): void {
  program
    .command("audit")
    .description("the audit trail, newest first: every API call that changed something and every command sent to an agent (admin token)")
    .option("--limit <n>", "how many entries", "50")
    .option("--json", "print JSON")
    .action(async (options: { limit: string; json?: boolean }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const entries = await client.get<AuditEntry[]>(`/v1/audit?limit=${Number(options.limit) || 50}`);
      process.stdout.write(options.json ? `${JSON.stringify(entries, null, 2)}\n` : `${renderAudit(entries)}\n`);
    });
}
