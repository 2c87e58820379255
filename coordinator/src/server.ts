import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { loadOrCreateTls } from "./tls/certificate.js";

/** The coordinator would serve plain HTTP where the network can see it. */
export class PlainRefused extends Error {
  readonly code = "ERR_PLAIN_REFUSED";
}
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { createLogger, watchEventLoop, type Logger } from "@cutover/log";
import { isLoopbackHost } from "@cutover/protocol";
import { createApi } from "./api/router.js";
import { DEFAULT_FLEET_OPTIONS, Fleet, type FleetOptions } from "./fleet/fleet.js";
import { createHash } from "node:crypto";
import { DATA_DIR_MODE, openDatabase, PRIVATE_FILE_MODE, StoreUnavailable, type Db } from "./store/database.js";
import { FencedOut, PostgresDb } from "./store/postgres.js";
import { LeaseTable } from "./store/lease.js";
import { ClusterLeadership, DEFAULT_LEASE_TIMERS, type LeaseTimers } from "./cluster/cluster-leadership.js";
import { serverStatus } from "./cluster/server-status.js";
import { forwardToLeader } from "./api/forward-to-leader.js";
import type { Leadership } from "./fleet/leadership.js";
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
  /** A postgres:// URL: the store is that database, shared with the other coordinators of the fleet (docs/ha.md). Default: SQLite in dataDir. */
  store?: string;
  /** The lease's timers, on a shared store. */
  lease?: Partial<LeaseTimers>;
  /** Called once this coordinator has lost the lease to another (it has stopped acting); the server command exits. */
  onDeposed?: () => void;
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
  /** On a shared store: the lease and the members. */
  cluster: ClusterLeadership | undefined;
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

/** A member of a shared store whose signing, secrets or TLS keys differ from the other members'. */
export class KeysMismatch extends Error {
  readonly code = "ERR_KEYS_MISMATCH";
}

/** Until its first lease tick a member of a shared store neither leads nor knows who does. */
const NOT_YET_A_MEMBER: Leadership = { isLeader: () => false, epoch: () => 0, members: () => [], leaderAgentUrl: () => undefined };

/** Opens the shared PostgreSQL store; the data dir still holds this member's keys and its artifact cache. */
function openSharedStore(url: string, dataDir: string): PostgresDb {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new StoreUnavailable(`--store must be a postgres:// URL (e.g. postgres://cutover@db.example:5432/cutover), got "${url.replace(/:[^:@/]*@/, ":***@")}"`);
  mkdirSync(dataDir, { recursive: true, mode: DATA_DIR_MODE });
  chmodSync(dataDir, DATA_DIR_MODE);
  try {
    return PostgresDb.connect(url);
  } catch (error) {
    const where = new URL(url).host;
    throw new StoreUnavailable(`cannot open the PostgreSQL store at ${where}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const log = options.log ?? createLogger("coordinator");
  if (!options.tls && !options.allowPlain && !isLoopbackHost(options.host)) {
    throw new PlainRefused(`refusing plain HTTP on ${options.host}: agents' tokens and the API would cross the network unencrypted; add --tls (a self-signed certificate is made on first start) or, on a trusted network, --allow-plain`);
  }
  checkInstallerPaths({ bundlePath: options.agentBundle, installerPath: options.installer });
  const shared = options.store !== undefined;
  if (shared && ["0.0.0.0", "::", "[::]"].includes(options.host)) {
    throw new PlainRefused(`with --store, --listen must be an address the other members and the agents can reach (a member announces the URL it listens on), not ${options.host}`);
  }
  const db: Db = shared ? openSharedStore(options.store!, options.dataDir) : openDatabase(options.dataDir);
  const key = loadOrCreateCoordinatorKey(options.dataDir);
  const secretsKey = loadOrCreateSecretsKey(options.dataDir);
  const hosts = new HostStore(db);
  const tokens = new TokenStore(db, { coordinatorKeyId: key.keyId });
  // On a shared store only the leader writes: the first admin token is made once a member leads (lead below).
  let adminTokenPath = shared ? undefined : bootstrapAdminToken(tokens, options.dataDir);
  const artifacts = new ArtifactStore(db, options.dataDir, { shared });
  const deployments = new DeploymentStore(db);
  const apps = new AppStore(db);
  const locks = new LockStore(db);
  const secrets = new SecretStore(db, secretsKey);
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
  const resume = () => rollouts.resumeUnfinished((sha256) => artifacts.get(sha256)?.size ?? 0);
  if (!shared) resume();
  const tls = options.tls ? loadOrCreateTls(options.dataDir, options.host) : undefined;
  const installer = new InstallerSource({ key, bundlePath: options.agentBundle, installerPath: options.installer, tlsCert: tls?.cert });
  let cluster: ClusterLeadership | undefined;
  let url = "";
  if (shared) fleet.leadership = NOT_YET_A_MEMBER;
  const locator = { isLeader: () => fleet.leadership.isLeader(), leaderApiUrl: () => cluster?.leader()?.apiUrl, tlsCertificate: tls?.cert };
  const api = createApi({
    ...{ fleet, hosts, tokens, artifacts, deployments, apps, locks, secrets, rollouts, audit, refusals, metrics, installer, log: log.child("api"), version: VERSION },
    server: { status: () => serverStatus(cluster, url), forward: shared ? forwardToLeader(locator, log.child("api")) : undefined },
  });

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
  url = `${tls ? "https" : "http"}://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
  log.info("listening", { url, dataDir: options.dataDir, version: VERSION, fingerprint: tls?.fingerprint, store: shared ? "postgres" : "sqlite" });
  const stopWatchingLoop = watchEventLoop(log);
  refusals.start();
  if (shared) {
    const keysId = createHash("sha256").update(key.publicKey).update(secretsKey).update(tls?.cert ?? "").digest("base64url").slice(0, 22);
    const self = { id: new URL(url).host, apiUrl: url, agentUrl: `${url.replace(/^http/, "ws")}${AGENT_PATH}`, version: VERSION, keysId };
    const timers = { ...DEFAULT_LEASE_TIMERS, ...options.lease };
    const lease = new LeaseTable(db as PostgresDb, self.id, timers.leaseTtlMs);
    const theirs = lease.clusterKeysId();
    if (theirs && theirs !== keysId) {
      stopWatchingLoop();
      refusals.close();
      fleet.close();
      server.closeAllConnections();
      server.close();
      db.close();
      throw new KeysMismatch(`this coordinator's keys are not the cluster's: every member must hold the same ${COORDINATOR_KEY_FILE}, ${SECRETS_KEY_FILE}${tls ? " and tls/" : ""} (copy them from a member's data dir into ${options.dataDir})`);
    }
    cluster = new ClusterLeadership(db as PostgresDb, lease, self, timers, log.child("cluster"), {
      lead: () => {
        adminTokenPath ??= bootstrapAdminToken(tokens, options.dataDir);
        if (adminTokenPath) log.info("admin API token written", { path: adminTokenPath });
        resume();
      },
      deposed: () => {
        fleet.close();
        options.onDeposed?.();
      },
    });
    fleet.leadership = cluster;
    cluster.start();
  }

  return {
    url,
    port,
    fleet,
    rollouts,
    db,
    cluster,
    adminTokenPath,
    fingerprint: tls?.fingerprint,
    close: async () => {
      stopWatchingLoop();
      cluster?.stop();
      fleet.close();
      refusals.close();
      audit.flush();
      hosts.writeReports();
      try {
        deployments.flush();
      } catch (error) {
        // A member that no longer leads writes nothing: the leader has the rollouts now.
        if (!(error instanceof FencedOut)) throw error;
      }
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
    },
  };
}
