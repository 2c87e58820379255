import type { Command } from "commander";
import { resolveClientSettings, type GlobalOptions } from "../config.js";

/**
 * The dashboard link for a coordinator and an API token. The token rides in
 * the URL fragment, which a browser never sends to the server; the page
 * moves it into the tab's sessionStorage and takes it out of the address bar.
 */
export function dashboardLink(url: string, token: string): string {
  return `${url.replace(/\/+$/, "")}/ui/#token=${encodeURIComponent(token)}`;
}

export function registerUi(program: Command): void {
  program
    .command("ui")
    .description("print a link that opens the dashboard signed in with this CLI's URL and token (the token is in the link: treat it as the token)")
    .option("--json", "print JSON")
    .action((options: { json?: boolean }, command: Command) => {
      const settings = resolveClientSettings(command.optsWithGlobals<GlobalOptions>());
      const link = dashboardLink(settings.url, settings.token);
      if (options.json) {
        process.stdout.write(`${JSON.stringify({ url: link, ...(settings.fingerprint && { fingerprint: settings.fingerprint }) })}\n`);
        return;
      }
      process.stdout.write(`${link}\n`);
      if (process.stderr.isTTY) {
        process.stderr.write("The link carries the API token: open it in your own browser only; the page keeps the token in that tab alone.\n");
        if (settings.fingerprint) process.stderr.write(`Your browser must trust the coordinator's certificate: check it shows ${settings.fingerprint}.\n`);
      }
    });
}
