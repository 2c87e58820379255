import type { Command } from "commander";
import { parseDuration } from "@cutover/spec";
import { EXIT, ExitError } from "../exit-error.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { renderTable } from "../table.js";
import type { ServerStatus } from "../../cluster/server-status.js";

export const DEFAULT_LISTEN = "127.0.0.1:7400";

/** Agents take a coordinator that sends nothing for 30 s (COORDINATOR_SILENCE_MS) for gone: pings come well inside that. */
const MAX_PING_INTERVAL_MS = 10_000;

export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ExitError(`--listen must be HOST:PORT (e.g. 0.0.0.0:7400), got "${text}"`, EXIT.usage);
  }
  return { host: (match[1] ?? match[2])!, port };
}

function duration(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (error) {
    throw new ExitError(`${flag}: ${(error as Error).message}`, EXIT.usage);
  }
  if (ms <= 0) throw new ExitError(`${flag} must be more than 0, got "${text}"`, EXIT.usage);
  return ms;
}

/** `cutover server status`: who leads, under which epoch, and every member. */
export function renderServerStatus(status: ServerStatus): string {
  const lease = status.leaseExpiresInMs === null ? "" : `, lease ${status.leaseExpiresInMs >= 0 ? `renewed, ${Math.round(status.leaseExpiresInMs / 1000)}s left` : `expired ${Math.round(-status.leaseExpiresInMs / 1000)}s ago`}`;
  const head = `store ${status.store}; leader ${status.leader ?? "none"} (epoch ${status.epoch}${lease}); answered by ${status.self} (${status.role})`;
  if (status.store === "sqlite") return `${head}
one coordinator on its own store: no other member`;
  const rows = status.members.map((m) => [m.id, m.role, m.apiUrl, m.version, `${Math.round(m.seenAgoMs / 1000)}s ago`]);
  return `${head}
${renderTable(["MEMBER", "ROLE", "API", "VERSION", "SEEN"], rows)}`;
}

function registerServerStatus(server: Command): void {
  server
    .command("status")
    .description("the coordinators sharing this store: which leads, the lease's epoch, every member (ask any of them)")
    .option("--json", "print JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      const status = await client.get<ServerStatus>("/v1/server/status");
      process.stdout.write(options.json ? `${JSON.stringify(status, null, 2)}\n` : `${renderServerStatus(status)}\n`);
    });
}

export function registerServer(program: Command): void {
  const server = program
    .command("server")
    .description("run the coordinator: HTTP API and agent endpoint on one port, SQLite store in the data dir")
    .option("--data-dir <dir>", "where the store and the admin token live", "/var/lib/cutover/coordinator")
    .option("--listen <host:port>", "address to serve the API and agents on", DEFAULT_LISTEN)
    .option("--heartbeat-interval <duration>", "how often agents report; 2 intervals without one shows a host as late (never cut for it)", "5s")
    .option("--ping-interval <duration>", "how often the coordinator pings each agent's link", "5s")
    .option("--ping-timeout <duration>", "a ping unanswered this long cuts the session: the host is unreachable", "15s")
    .option("--handshake-timeout <duration>", "time an agent has to say Hello", "10s")
    .option("--tls", "serve https/wss (certificate in DATA_DIR/tls, self-signed on first start; agents pin its fingerprint)")
    .option("--allow-plain", "allow plain http/ws on an address other than loopback")
    .option("--agent-bundle <file>", "the one-file agent served to hosts at /v1/agent/bundle, signed (default: dist/cutover-agent.mjs of the checkout, or cutover-agent.mjs beside the one-file CLI)")
    .option("--installer <file>", "the install.sh served at /install.sh (default: beside the agent bundle, else one directory up)")
    .option("--store <postgres-url>", "share a PostgreSQL store with other coordinators (active/passive, docs/ha.md), e.g. postgres://cutover@db:5432/cutover; the password from PGPASSWORD or ~/.pgpass, not the URL (default: SQLite in the data dir)")
    .option("--lease-ttl <duration>", "with --store: how long the leader's lease lasts unrenewed; a takeover after a lost leader waits this long (renewed every fifth of it)", "10s")
    .action(async (own: { dataDir: string; listen: string; heartbeatInterval: string; pingInterval: string; pingTimeout: string; handshakeTimeout: string; tls?: boolean; allowPlain?: boolean; agentBundle?: string; installer?: string; store?: string; leaseTtl: string }, command: Command) => {
      // With globals: the CLI's own --allow-plain (for its client calls) takes the flag wherever it is written.
      const options = command.optsWithGlobals<typeof own>();
      const { host, port } = parseListen(options.listen);
      // Loaded here, not at the top: every other verb runs without the server's modules
      // (express, the SQLite addon), so the one-file CLI needs no node_modules for them.
      const { InstallerFileMissing, KeysMismatch, PlainRefused, StoreUnavailable, startCoordinator } = await import("../../server.js");
      const leaseTtlMs = duration("--lease-ttl", options.leaseTtl)!;
      const pingIntervalMs = duration("--ping-interval", options.pingInterval);
      if (pingIntervalMs !== undefined && pingIntervalMs > MAX_PING_INTERVAL_MS) {
        throw new ExitError(`--ping-interval must be at most 10s: agents take a coordinator silent for 30s for gone; got "${options.pingInterval}"`, EXIT.usage);
      }
      if (options.store === undefined && command.getOptionValueSource("leaseTtl") === "cli") throw new ExitError("--lease-ttl needs --store: a coordinator on its own SQLite store holds no lease", EXIT.usage);
      const coordinator = await startCoordinator({
        dataDir: options.dataDir,
        host,
        port,
        tls: options.tls,
        allowPlain: options.allowPlain,
        agentBundle: options.agentBundle,
        installer: options.installer,
        store: options.store,
        lease: { leaseTtlMs, renewEveryMs: leaseTtlMs / 5 },
        // Deposed: it has stopped acting; exiting lets its supervisor start it again, as a follower.
        onDeposed: () => process.exit(EXIT.tryLater),
        fleet: {
          heartbeatIntervalMs: duration("--heartbeat-interval", options.heartbeatInterval),
          pingIntervalMs,
          pingTimeoutMs: duration("--ping-timeout", options.pingTimeout),
          handshakeTimeoutMs: duration("--handshake-timeout", options.handshakeTimeout),
        },
      }).catch((error: NodeJS.ErrnoException) => {
        if (error instanceof PlainRefused || error instanceof InstallerFileMissing) throw new ExitError(error.message, EXIT.usage);
        if (error instanceof StoreUnavailable || error instanceof KeysMismatch) throw new ExitError(error.message);
        if (error.code === "EADDRINUSE") throw new ExitError(`cannot listen on ${options.listen}: the address is in use (another cutover server?)`);
        throw error;
      });
      if (coordinator.adminTokenPath) {
        process.stdout.write(`admin API token written to ${coordinator.adminTokenPath}\n`);
      }
      if (coordinator.fingerprint) process.stdout.write(`TLS certificate fingerprint ${coordinator.fingerprint}\n`);
      process.stdout.write(`cutover server listening on ${coordinator.url}\n`);
      const stop = () => {
        void coordinator.close().then(() => process.exit(0));
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  registerServerStatus(server);
}
