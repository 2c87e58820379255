import type { Command } from "commander";
import type { TokenJson } from "../../api/tokens.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";

interface CreateOptions {
  api?: boolean;
  role?: string;
  name?: string;
  expires?: string;
  ttl?: string;
  labels?: string;
  address?: string;
  json?: boolean;
}

const when = (iso: string | null) => (iso ? iso.replace("T", " ").slice(0, 16) : "-");

function binding(token: TokenJson): string {
  const labels = token.labels && Object.entries(token.labels).map(([k, v]) => `${k}=${v}`).join(",");
  return [labels, token.address && `address ${token.address}`].filter(Boolean).join("; ") || "-";
}

/** Every token, newest first: what it is and where it is in its life, never its secret. */
export function renderTokens(tokens: TokenJson[]): string {
  if (tokens.length === 0) return "no tokens";
  return renderTable(
    ["ID", "KIND", "NAME", "ROLE", "STATE", "CREATED", "EXPIRES", "USED BY", "BINDS", "REVOKED"],
    tokens.map((t) => [
      t.id,
      t.kind,
      t.name ?? "-",
      t.role ?? "-",
      t.state,
      when(t.createdAt),
      t.expiresAt ? when(t.expiresAt) : "never",
      t.usedBy ? `${t.usedBy} (${when(t.usedAt)})` : "-",
      binding(t),
      t.revokedAt ? `${when(t.revokedAt)} by ${t.revokedBy}` : "-",
    ]),
  );
}

/** Flags that belong to the other kind of token are refused instead of ignored. */
function checkCreateFlags(options: CreateOptions, api: boolean): void {
  const misplaced = api
    ? [["--ttl", options.ttl], ["--labels", options.labels], ["--address", options.address]].filter(([, v]) => v !== undefined).map(([flag]) => flag)
    : [["--name", options.name], ["--expires", options.expires]].filter(([, v]) => v !== undefined).map(([flag]) => flag);
  if (misplaced.length === 0) return;
  throw new ExitError(
    api
      ? `${misplaced.join(", ")}: for enrollment tokens (drop --api/--role); an API token's lifetime is --expires`
      : `${misplaced.join(", ")}: for API tokens, add --api (and --role read|deploy|admin); an enrollment token's lifetime is --ttl`,
    EXIT.usage,
  );
}

export function registerToken(program: Command): void {
  const token = program.command("token").description("enrollment tokens (for agents) and API tokens (for people and CI): create, list, revoke (admin token)");
  const clientOf = (command: Command) => new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
  token
    .command("create")
    .description("print a one-time agent enrollment token alone on stdout; with --api (or --role), an API token instead")
    .option("--ttl <duration>", "enrollment: how long it stays valid, e.g. 1h or 7d (default 1h, at most 30d)")
    .option("--labels <k=v,...>", "enrollment: the labels the host that enrolls with it gets, whatever its agent says")
    .option("--address <address>", "enrollment: the address (IPv4, IPv6 or host name) the host gets, whatever its agent says")
    .option("--api", "create an API token instead")
    .option("--role <role>", "API token role: read (look), deploy (deploy, rollback, logs) or admin (tokens, hosts, audit); default read")
    .option("--name <name>", "API token name (shows in logs and the audit trail)")
    .option("--expires <duration>", "API token: refused after this long, e.g. 30d or 12h (default: never)")
    .option("--json", "print a JSON object with the token, its id and expiry")
    .action(async (options: CreateOptions, command: Command) => {
      const api = options.api === true || options.role !== undefined;
      checkCreateFlags(options, api);
      const client = clientOf(command);
      const created = api
        ? await client.post<{ token: string }>("/v1/tokens/api", { role: options.role ?? "read", name: options.name, expires: options.expires })
        : await client.post<{ token: string }>("/v1/tokens/enrollment", { ttl: options.ttl, labels: options.labels, address: options.address });
      // The token alone on stdout: scripts take it with $(cutover token create).
      process.stdout.write(options.json ? `${JSON.stringify(created)}\n` : `${created.token}\n`);
    });
  token
    .command("list")
    .description("every API and enrollment token: id, kind, name, role, state, created, expires, used by, what it binds, revoked (never a secret)")
    .option("--json", "print a JSON array")
    .action(async (options: { json?: boolean }, command: Command) => {
      const tokens = await clientOf(command).get<TokenJson[]>("/v1/tokens");
      process.stdout.write(options.json ? `${JSON.stringify(tokens, null, 2)}\n` : `${renderTokens(tokens)}\n`);
    });
  token
    .command("revoke <id>")
    .description("revoke a token of either kind (the ID from `cutover token list`): it is refused from then on")
    .action(async (id: string, _options: unknown, command: Command) => {
      const revoked = await clientOf(command).post<TokenJson>(`/v1/tokens/${encodeURIComponent(id)}/revoke`, {});
      const what = revoked.kind === "api" ? `api token "${revoked.name}" (${revoked.role})` : "enrollment token";
      process.stdout.write(`revoked ${what} ${revoked.id}: refused from now on\n`);
    });
}
