import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { loadOrCreateTls } from "./tls/certificate.js";

/** The coordinator would serve plain HTTP where the network can see it. */
export class PlainRefused extends Error {
  readonly code = "ERR_PLAIN_REFUSED";
}
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createLogger, watchEventLoop, type Logger } from "@cutover/log";
import { isLoopbackHost } from "@cutover/protocol";
import { createApi } from "./api/router.js";
import { DEFAULT_FLEET_OPTIONS, Fleet, type FleetOptions } from "./fleet/fleet.js";
import { DATA_DIR_MODE, openDatabase, PRIVATE_FILE_MODE, type Db } from "./store/database.js";
import { HostStore } from "./store/hosts.js";
import { TokenStore } from "./store/tokens.js";
import { ArtifactStore } from "./store/artifacts.js";
import { DeploymentStore } from "./store/deployments.js";
import { AppStore } from "./store/apps.js";
import { Rollouts } from "./rollout/rollouts.js";
import type { RolloutDeps } from "./rollout/run.js";
import { LockStore } from "./store/locks.js";
import { SecretStore } from "./store/secrets.js";
import { loadOrCreateSecretsKey, SECRETS_KEY_FILE } from "./store/secret-box.js";
import { AuditStore } from "./store/audit.js";
import { CoordinatorMetrics } from "./metrics/registry.js";
import { COORDINATOR_KEY_FILE, loadOrCreateCoordinatorKey } from "./fleet/coordinator-key.js";
import { RefusedCalls } from "./api/refused-calls.js";
import { checkInstallerPaths, InstallerSource } from "./installer/agent-bundle.js";
import { VERSION } from "./version.js";

/** After its deployment ends, a host may still be finishing the download of its artifact for this long. */
const ARTIFACT_GRACE_MS = 10 * 60 * 1000;

/** The path of the agent WebSocket endpoint. */
export { StoreUnavailable } from "./store/database.js";
export { InstallerFileMissing } from "./installer/agent-bundle.js";

export const AGENT_PATH = "/v1/agent";

export interface CoordinatorOptions {
  dataDir: string;
  /** Address to listen on; port 0 picks a free one. */
  host: string;
  port: number;
  fleet?: Partial<FleetOptions>;
  log?: Logger;
  /** Serve https/wss with DATA_DIR/tls (a self-signed certificate is made on first start). */
  tls?: boolean;
  /** Allow plain http/ws on an address other than loopback (not recommended). */
  allowPlain?: boolean;
  /** The agent bundle served to hosts (GET /v1/agent/bundle); default: see defaultBundleCandidates. */
  agentBundle?: string;
  /** install.sh served to hosts (GET /install.sh); default: beside the bundle, else one up. */
  installer?: string;
}

/** The defaults, overridden by what is set (an undefined field keeps its default); every timer must be a positive number. */
function fleetOptions(overrides: Partial<FleetOptions> = {}): FleetOptions {
  const set = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  const merged = { ...DEFAULT_FLEET_OPTIONS, ...set } as FleetOptions;
  for (const [name, value] of Object.entries(merged)) {
    if (!(typeof value === "number" && Number.isFinite(value) && value > 0)) throw new Error(`fleet option ${name} must be a positive number, got ${String(value)}`);
  }
  return merged;
}

export interface Coordinator {
  /** http://host:port */
  url: string;
  port: number;
  fleet: Fleet;
  rollouts: Rollouts;
  db: Db;
  /** Set when this start created the first admin token. */
  adminTokenPath: string | undefined;
  /** The TLS certificate's fingerprint when serving https. */
  fingerprint: string | undefined;
  close(): Promise<void>;
}

/**
 * Creates the first admin API token on an empty store and writes it to
 * DATA_DIR/admin-token (0600). Later starts leave tokens alone.
 */
function bootstrapAdminToken(tokens: TokenStore, dataDir: string): string | undefined {
  if (tokens.countApiTokens() > 0) return undefined;
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const { token } = tokens.createApiToken("admin", "admin");
  if (existsSync(path)) writeFileSync(path, "", { mode: PRIVATE_FILE_MODE });
  writeFileSync(path, `${token}\n`, { mode: PRIVATE_FILE_MODE });
  return path;
}

const ADMIN_TOKEN_FILE = "admin-token";

/**
 * The data dir's secrets are 0600 (and the TLS dir 0700) at every start,
 * whatever mode a copy, a restore or an operator's own key.pem left them with.
 */
function restrictSecretFiles(dataDir: string): void {
  for (const file of [ADMIN_TOKEN_FILE, COORDINATOR_KEY_FILE, SECRETS_KEY_FILE, join("tls", "key.pem")]) {
    const path = join(dataDir, file);
    if (existsSync(path)) chmodSync(path, PRIVATE_FILE_MODE);
  }
  if (existsSync(join(dataDir, "tls"))) chmodSync(join(dataDir, "tls"), DATA_DIR_MODE);
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const log = options.log ?? createLogger("coordinator");
  if (!options.tls && !options.allowPlain && !isLoopbackHost(options.host)) {
    throw new PlainRefused(`refusing plain HTTP on ${options.host}: agents' tokens and the API would cross the network unencrypted; add --tls (a self-signed certificate is made on first start) or, on a trusted network, --allow-plain`);
  }
  checkInstallerPaths({ bundlePath: options.agentBundle, installerPath: options.installer });
  const db = openDatabase(options.dataDir);
  const key = loadOrCreateCoordinatorKey(options.dataDir);
  const hosts = new HostStore(db);
  const tokens = new TokenStore(db, { coordinatorKeyId: key.keyId });
  const adminTokenPath = bootstrapAdminToken(tokens, options.dataDir);
  const artifacts = new ArtifactStore(db, options.dataDir);
  const deployments = new DeploymentStore(db);
  const apps = new AppStore(db);
  const locks = new LockStore(db);
  const secrets = new SecretStore(db, loadOrCreateSecretsKey(options.dataDir));
  const audit = new AuditStore(db);
  const refusals = new RefusedCalls(audit);
  let fleet!: Fleet;
  const metrics = new CoordinatorMetrics({
    hostStates: () => {
      const counts: Record<string, number> = { online: 0, late: 0, unreachable: 0 };
      for (const host of hosts.list()) counts[fleet.liveness(host.id)]! += 1;
      return counts;
    },
    sessions: () => fleet.onlineCount(),
    requests: () => fleet.requests.all(),
  });
  const artifactSource = {
    get: (sha256: string) => artifacts.get(sha256),
    read: (sha256: string, offset: number, length: number) => artifacts.read(sha256, offset, length),
    mayFetch: (hostName: string, sha256: string) => deployments.sentArtifact(hostName, sha256, Date.now() - ARTIFACT_GRACE_MS),
  };
  fleet = new Fleet(db, hosts, tokens, log.child("fleet"), fleetOptions(options.fleet), key, artifactSource, audit, (operation, status, seconds) =>
    metrics.commandDuration.observe({ operation, status }, seconds),
  );
  deployments.onFinished = (d) => metrics.deployments.inc({ strategy: d.strategy, kind: d.kind, outcome: d.state });
  const onHostDeployed: RolloutDeps["onHostDeployed"] = (outcome) => {
    if (outcome.unchanged) return;
    if (outcome.switchMs) metrics.stepDuration.observe({ step: "switch" }, outcome.switchMs / 1000);
    if (outcome.bootMs) metrics.stepDuration.observe({ step: "boot" }, outcome.bootMs / 1000);
    if (outcome.totalMs) metrics.stepDuration.observe({ step: "total" }, outcome.totalMs / 1000);
  };
  const rollouts = new Rollouts({ fleet, hosts, deployments, apps, secrets, log: log.child("rollout"), onHostDeployed }, locks);
  rollouts.resumeUnfinished((sha256) => artifacts.get(sha256)?.size ?? 0);
  const tls = options.tls ? loadOrCreateTls(options.dataDir, options.host) : undefined;
  const installer = new InstallerSource({ key, bundlePath: options.agentBundle, installerPath: options.installer, tlsCert: tls?.cert });
  const api = createApi({ fleet, hosts, tokens, artifacts, deployments, apps, locks, secrets, rollouts, audit, refusals, metrics, installer, log: log.child("api"), version: VERSION });

  restrictSecretFiles(options.dataDir);
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, api) : createServer(api);
  server.on("upgrade", (request, socket, head) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== AGENT_PATH) {
      socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    fleet.handleUpgrade(request, socket, head);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${tls ? "https" : "http"}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
  log.info("listening", { url, dataDir: options.dataDir, version: VERSION, fingerprint: tls?.fingerprint });
  const stopWatchingLoop = watchEventLoop(log);
  refusals.start();

  return {
    url,
    port,
    fleet,
    rollouts,
    db,
    adminTokenPath,
    fingerprint: tls?.fingerprint,
    close: async () => {
      stopWatchingLoop();
      fleet.close();
      refusals.close();
      audit.flush();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
    },
  };
}
