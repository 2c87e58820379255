import type { Command } from "commander";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { readEvents } from "../sse.js";
import { printable } from "../terminal-text.js";

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("APP's instance logs (stdout and stderr, both colors) from every host running it, or an agent's own log with --agent (deploy token: logs carry what apps print)")
    .argument("[app]", "app name")
    .option("--host <name>", "only this host")
    .option("--agent", "the agent's own log instead of an app's")
    .option("-n, --lines <n>", "existing lines to show first, per file", "100")
    .option("-f, --follow", "keep printing new lines until interrupted")
    .action(async (app: string | undefined, options: { host?: string; agent?: boolean; lines: string; follow?: boolean }, command: Command) => {
      if (!app && !options.agent) throw new ExitError("name an app, or pass --agent for the agent's own log", EXIT.usage);
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const query = new URLSearchParams({ lines: String(Number(options.lines) || 0) });
      if (app) query.set("app", app);
      if (options.agent) query.set("agent", "1");
      if (options.host) query.set("host", options.host);
      if (options.follow) query.set("follow", "1");
      const body = await client.stream(`/v1/logs?${query}`);
      for await (const message of readEvents(body)) {
        if (message.event === "lines") {
          const { host, source, lines } = JSON.parse(message.data) as { host: string; source: string; lines: string[] };
          process.stdout.write(lines.map((line) => `${printable(host)} ${printable(source)} | ${printable(line)}\n`).join(""));
        } else if (message.event === "error") {
          const { host, message: why } = JSON.parse(message.data) as { host: string; message: string };
          process.stderr.write(`cutover: ${printable(host)}: ${printable(why)}\n`);
        } else if (message.event === "end") {
          return;
        }
      }
    });
}
