import type { Command } from "commander";
import { normalizeFingerprint } from "@cutover/protocol";
import type { InstallerManifest } from "../../installer/agent-bundle.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type ClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { registerHostsBootstrap } from "./hosts-bootstrap.js";

/** One word for a POSIX shell, whatever it holds. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

export interface JoinLine {
  /** How hosts reach the coordinator: install.sh's --coordinator, and where install.sh is fetched from. */
  coordinatorUrl: string;
  token: string;
  manifest: Pick<InstallerManifest, "publicKey" | "tls">;
  labels?: string;
  address?: string;
}

/**
 * The line an operator pastes on a host as root. curl fetches install.sh pinned to the
 * certificate's public key (`--pinnedpubkey` holds with `-k`, which only skips the CA check a
 * self-signed certificate cannot pass; curl's docs: "the peer is still verified by public
 * key"); the script is run only once it has arrived whole (`s=$(curl -f …) &&`). install.sh
 * then fetches the bundle over the same pinned certificate (`--pin`) and checks its sha256 and
 * signature against `--coordinator-key`, which comes from this line, before installing anything.
 */
export function joinCommandLine(join: JoinLine): string {
  const base = join.coordinatorUrl.replace(/\/+$/, "");
  const tls = join.manifest.tls;
  const curl = tls ? ["curl", "-fsS", "-k", "--pinnedpubkey", `sha256//${tls.publicKeySha256}`, `${base}/install.sh`] : ["curl", "-fsS", `${base}/install.sh`];
  const args = [
    "--coordinator", base,
    ...(tls ? ["--pin", tls.fingerprint] : []),
    "--token", join.token,
    "--coordinator-key", join.manifest.publicKey,
    "--fetch-agent",
    ...(join.labels ? ["--labels", join.labels] : []),
    ...(join.address ? ["--address", join.address] : []),
  ];
  return `s=$(${curl.map(shellQuote).join(" ")}) && bash -c "$s" install.sh ${args.map(shellQuote).join(" ")}`;
}

/** What the coordinator serves to install hosts, checked against what this CLI trusts it by. */
export async function installerManifest(client: ApiClient, settings: ClientSettings): Promise<InstallerManifest> {
  const manifest = await client.get<InstallerManifest>("/v1/agent/bundle/manifest").catch((error: unknown) => {
    if (error instanceof ExitError && error.apiCode === "ERR_NOT_FOUND") {
      throw new ExitError(`the coordinator at ${settings.url} does not serve the agent installer (an older version?): upgrade it`, EXIT.refused);
    }
    throw error;
  });
  if (settings.fingerprint && manifest.tls && normalizeFingerprint(settings.fingerprint) !== manifest.tls.fingerprint) {
    throw new ExitError(`the coordinator says its certificate is ${manifest.tls.fingerprint}, not the ${settings.fingerprint} this CLI pins: not trusting what it says`, EXIT.unreachable);
  }
  return manifest;
}

interface JoinOptions {
  labels?: string;
  ttl?: string;
  address?: string;
  coordinator?: string;
  allowUnpinned?: boolean;
  json?: boolean;
}

/** `cutover hosts join-command` and `cutover hosts bootstrap`: put agents on hosts (admin). */
export function registerHostsJoin(hosts: Command): void {
  hosts
    .command("join-command")
    .description("print one line to paste on a new host as root: it fetches install.sh pinned to this coordinator, checks the agent's signature, installs and enrolls it with a fresh token (admin)")
    .option("--labels <k=v,...>", "the labels the host gets (bound to the token)")
    .option("--ttl <duration>", "how long the line's token stays valid, e.g. 1h or 7d (default 1h, at most 30d)")
    .option("--address <address>", "the address the host gets (bound to the token)")
    .option("--coordinator <url>", "the coordinator's URL as hosts reach it (default: this CLI's --url / CUTOVER_URL)")
    .option("--allow-unpinned", "with a plain-http coordinator: print a line anyway (install.sh fetched unauthenticated; the bundle is still checked against the coordinator's key)")
    .option("--json", "print {command, token, expiresAt, labels, address, bundleSha256}")
    .action(async (options: JoinOptions, command: Command) => {
      const settings = resolveClientSettings(command.optsWithGlobals<GlobalOptions>());
      const client = new ApiClient(settings);
      const coordinatorUrl = options.coordinator ?? settings.url;
      if (!/^https?:\/\/[^/\s]+\/?$/.test(coordinatorUrl)) throw new ExitError(`--coordinator must be http(s)://HOST:PORT, got "${coordinatorUrl}"`, EXIT.usage);
      const manifest = await installerManifest(client, settings);
      if (!manifest.tls || coordinatorUrl.startsWith("http:")) {
        if (!options.allowUnpinned) {
          throw new ExitError(
            `cannot pin: the coordinator serves plain http (${coordinatorUrl}), so a host could not tell it from an impostor when it fetches install.sh. ` +
              "Start it with `cutover server --tls`, or pass --allow-unpinned on a network you trust",
            EXIT.usage,
          );
        }
        if (manifest.tls) manifest.tls = null;
      }
      const created = await client.post<{ token: string; expiresAt: string; labels: Record<string, string> | null; address: string | null }>("/v1/tokens/enrollment", {
        ttl: options.ttl,
        labels: options.labels,
        address: options.address,
      });
      const line = joinCommandLine({ coordinatorUrl, token: created.token, manifest, labels: options.labels, address: options.address });
      process.stdout.write(
        options.json
          ? `${JSON.stringify({ command: line, token: created.token, expiresAt: created.expiresAt, labels: created.labels, address: created.address, bundleSha256: manifest.bundle.sha256 })}\n`
          : `${line}\n`,
      );
      if (!options.json && !manifest.tls) process.stderr.write("cutover: warning: unpinned: install.sh is fetched over plain http (--allow-unpinned)\n");
      if (!options.json) process.stderr.write(`cutover: paste it on the host as root before ${created.expiresAt} (one host, once)\n`);
    });
  registerHostsBootstrap(hosts);
}
