import type { Command } from "commander";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { ExitError } from "../exit-error.js";

export function registerToken(program: Command): void {
  const token = program.command("token").description("create enrollment tokens (for agents) and API tokens (for people and CI)");
  token
    .command("create")
    .description("print a one-time agent enrollment token alone on stdout; with --role, an API token instead")
    .option("--ttl <duration>", "how long the enrollment token stays valid", "1h")
    .option("--role <role>", "create an API token with this role instead: read, deploy or admin")
    .option("--name <name>", "a name for the API token (shows in logs and the audit trail)")
    .option("--json", "print a JSON object with the token and its expiry")
    .action(async (options: { ttl: string; role?: string; name?: string; json?: boolean }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      if (options.role !== undefined) {
        const created = await client.post<{ token: string; name: string; role: string }>("/v1/tokens/api", { role: options.role, name: options.name });
        process.stdout.write(options.json ? `${JSON.stringify(created)}\n` : `${created.token}\n`);
        return;
      }
      if (options.name !== undefined) throw new ExitError("--name applies to API tokens: add --role read|deploy|admin");
      const created = await client.post<{ token: string; expiresAt: string }>("/v1/tokens/enrollment", { ttl: options.ttl });
      process.stdout.write(options.json ? `${JSON.stringify(created)}\n` : `${created.token}\n`);
    });
}
