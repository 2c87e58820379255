import { basename } from "node:path";
import type { Command } from "commander";
import type { HostCheck } from "../../rollout/preflight.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";
import { loadSpec } from "./deploy.js";

export function renderCheck(app: string, hosts: HostCheck[]): string {
  if (hosts.length === 0) return `${app}: no enrolled host matches the spec's hosts selector`;
  const rows = hosts.flatMap((h) => h.checks.map((c, i) => [i === 0 ? h.name : "", c.what, c.ok ? "pass" : "FAIL", c.need, c.have, c.reason ?? ""]));
  return renderTable(["HOST", "CHECK", "RESULT", "NEEDS", "HAS", "WHY"], rows);
}

export function registerCheck(program: Command): void {
  program
    .command("check")
    .description("resource preflight: what a deploy of SPEC needs on each selected host, what the host reports, pass/fail with the reason")
    .argument("<spec>", "the app spec (YAML)")
    .option("--json", "print JSON")
    .action(async (file: string, options: { json?: boolean }, command: Command) => {
      const { spec, text } = loadSpec(file, {});
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const result = await client.post<{ app: string; ok: boolean; hosts: HostCheck[] }>("/v1/check", { spec: text, specFile: basename(file) });
      process.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${renderCheck(spec.app, result.hosts)}\n`);
      if (!result.ok) throw new ExitError(`${result.hosts.filter((h) => !h.ok).map((h) => h.name).join(", ") || "no host"}: preflight failed`, EXIT.failed);
    });
}
