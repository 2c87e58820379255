import { statSync } from "node:fs";
import type { Command } from "commander";
import type { UpgradeLine } from "../../api/agents.js";
import type { HostUpgrade, UpgradeReport } from "../../fleet/agent-upgrade.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";

interface UpgradeOptions {
  file?: string;
  batch: string;
  hosts?: string;
  allowDowngrade?: boolean;
  deadline?: string;
  json?: boolean;
}

/** One row per host: what it ran, what it runs, and what happened. */
export function renderUpgrade(report: UpgradeReport): string {
  const table = renderTable(
    ["HOST", "FROM", "NOW", "OUTCOME", "MESSAGE"],
    report.hosts.map((h) => [h.host, h.from || "-", h.now || "-", h.outcome, h.message]),
  );
  const summary = report.halted ? `agent upgrade to ${report.version} HALTED: ${report.halted}` : `agent upgrade to ${report.version} done`;
  return printable(`${table}\n${summary}`);
}

function progressLine(progress: HostUpgrade | { host: string; step: string }): string {
  return printable("step" in progress ? `${progress.host}: ${progress.step}` : `${progress.host}: ${progress.outcome} (${progress.message})`);
}

/** Reads NDJSON lines from a response body. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<UpgradeLine> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) yield JSON.parse(line) as UpgradeLine;
    }
  }
}

export function registerAgents(program: Command): void {
  const agents = program.command("agents").description("the cutover agents of the fleet");
  agents
    .command("upgrade")
    .description("upgrade the agents over their sessions, batch by batch; each host must come back running the new version before the next batch (admin)")
    .option("--file <bundle>", "the one-file agent to install (default: the bundle the coordinator serves, dist/cutover-agent.mjs)")
    .option("--batch <n|p%>", "hosts upgraded at once", "1")
    .option("--hosts <k=v,...>", "only hosts with these labels")
    .option("--allow-downgrade", "install a version older than a host runs")
    .option("--deadline <duration>", "how long a new agent has to come online before its host puts the previous file back (default 60s)")
    .option("--json", "print the report as JSON")
    .action(async (options: UpgradeOptions, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const query = new URLSearchParams({ batch: options.batch });
      if (options.hosts) query.set("hosts", options.hosts);
      if (options.allowDowngrade) query.set("allowDowngrade", "1");
      if (options.deadline) query.set("deadline", options.deadline);
      let file: { path: string; size: number } | undefined;
      if (options.file) {
        try {
          file = { path: options.file, size: statSync(options.file).size };
        } catch (error) {
          throw new ExitError(`--file ${options.file}: ${(error as Error).message}`, EXIT.usage);
        }
      }
      const body = await client.postStream(`/v1/agents/upgrade?${query}`, file);
      let report: UpgradeReport | undefined;
      for await (const line of lines(body)) {
        if ("progress" in line) process.stderr.write(`${progressLine(line.progress)}\n`);
        else if ("report" in line) report = line.report;
        else throw new ExitError(`the upgrade stopped: ${line.error.message} (${line.error.code})`, EXIT.failed, line.error.code);
      }
      if (!report) throw new ExitError("the coordinator ended the upgrade without a report: see its log", EXIT.failed);
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderUpgrade(report)}\n`);
      if (report.halted) throw new ExitError(`agent upgrade halted: ${report.halted}`, EXIT.failed, "ERR_UPGRADE_HALTED");
    });
}
