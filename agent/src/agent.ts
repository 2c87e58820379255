import { chmodSync, mkdirSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { createLogger, watchEventLoop, type Logger } from "@cutover/log";
import { COMMAND_MAC, enrollmentTokenKeyId, FOLLOWS_LEADER, REMOVES_APPS, REPORTS_KEPT_RELEASES, RUNS_HOOKS, SERVES_VIRTUAL_HOSTS, TAKES_SECRETS, UPGRADE_ROLLED_BACK_EVENT, UPGRADES_ITSELF, type cutover } from "@cutover/protocol";
import { CommandDispatcher } from "./commands/dispatcher.js";
import { ConfigError, type AgentConfig } from "./config.js";
import { loadOrCreateIdentity, markEnrolled } from "./identity.js";
import { ResourceSampler } from "./resources.js";
import { CoordinatorLink, type LinkOptions } from "./session/coordinator-link.js";
import { CoordinatorUrls } from "./session/coordinator-urls.js";
import { welcomeHandler } from "./session/welcome.js";
import { AGENT_VERSION } from "./version.js";
import { AppManager } from "./apps/app-manager.js";
import { NginxAppProxy } from "./apps/app-proxy.js";
import { TlsFileStore } from "./apps/tls-files.js";
import { colorOfPort } from "./apps/definition.js";
import { COUNTS_REQUESTS, RequestCounterSource } from "./requests/request-counters.js";
import { Supervisors } from "./apps/supervisors.js";
import { SecretVault } from "./apps/secret-vault.js";
import { createNginxRunner, ensureSocketDir, isNginxError, loadProbeToken, PROBE_TOKEN_FILE, type NginxRunner, type ManagedNginx, type SwitchMode } from "./nginx/index.js";
import { keptReleases, ReleaseStore, type ChunkSource } from "./releases/release-store.js";
import { releaseDirs } from "./releases/release-dirs.js";
import { lbHandlers } from "./commands/lb.js";
import { removeAppHandler } from "./commands/remove-app.js";
import { hookHandler } from "./hooks/handler.js";
import { HookJournal } from "./hooks/journal.js";
import { LogStreams } from "./logs/streams.js";
import { CommandVerifier } from "./session/command-verifier.js";
import { AgentMetrics } from "./metrics/agent-metrics.js";
import { v1 } from "@cutover/protocol";
import { upgradeHandler } from "./upgrade/handler.js";
import { selfFile } from "./upgrade/self-file.js";
import { settleTrial } from "./upgrade/trial.js";

/** Tries per artifact chunk, each after waiting up to FETCH_RECONNECT_WAIT_MS for the coordinator to be back. */
const FETCH_ATTEMPTS = 4;
const FETCH_RECONNECT_WAIT_MS = 30_000;

/** Capabilities this agent build announces in Hello (nginx ones are added from what is installed). */
export const BASE_CAPABILITIES = ["ping", "deploy.bluegreen", "deploy.in-place", "rollback", "lb", REPORTS_KEPT_RELEASES, RUNS_HOOKS, REMOVES_APPS, SERVES_VIRTUAL_HOSTS, TAKES_SECRETS, COMMAND_MAC, FOLLOWS_LEADER];

export interface RunningAgent {
  link: CoordinatorLink;
  dispatcher: CommandDispatcher;
  apps: AppManager;
  nginx: NginxRunner;
  stop(): void;
  /** Resolves with a message when the coordinator refuses the agent for good. */
  refused: Promise<cutover.v1.Refusal>;
  /** Resolves once the agent replaced its own file (UpgradeAgent): it must exit for its wrapper to start the new one. */
  restartRequested: Promise<void>;
}

/**
 * The coordinator key the agent may pin at its first session: the one its
 * enrollment token names. Undefined when a key is pinned already, or when an
 * enrolled agent's pin was removed on purpose (it trusts the next key it sees).
 */
function trustedKeyOfEnrollment(config: AgentConfig, enrolled: boolean, pinned: boolean, log: Logger): string | undefined {
  if (pinned) return undefined;
  if (config.enrollmentToken && !enrolled) {
    const keyId = enrollmentTokenKeyId(config.enrollmentToken);
    if (!keyId) throw new ConfigError("the enrollment token names no coordinator key (is it whole? made by an older coordinator?): create one with `cutover token create`");
    return keyId;
  }
  if (enrolled) log.warn("no coordinator key is pinned (STATE/coordinator.json removed): trusting the key of the next coordinator that answers");
  return undefined;
}

/** Wires identity, resource reports, the coordinator link and command handling together. */
export async function startAgent(config: AgentConfig, log: Logger = createLogger("agent")): Promise<RunningAgent> {
  // 0711: apps that run as run.user must traverse it to reach their release dir; secrets inside are 0600.
  mkdirSync(config.stateDir, { recursive: true, mode: 0o711 });
  chmodSync(config.stateDir, 0o711);
  const identity = await loadIdentity(config, log);
  const sampler = new ResourceSampler([config.stateDir]);
  const { nginx, switchMode } = await openNginx(config, log);
  let link!: CoordinatorLink;
  const prepareNginx = nginxPreparer(nginx, log, (message) => link?.send({ event: { atUnixMs: Date.now(), kind: "nginx", message } }));
  const verifier = new CommandVerifier(config.stateDir);
  const enrollmentKeyId = trustedKeyOfEnrollment(config, identity.enrolled, verifier.pinned, log);
  const releases = releaseDirs(new ReleaseStore(config.stateDir), chunkFetcher(() => link, log));
  // Secret values, in memory only (apps/secret-vault.ts): commands fill it, the supervisors start apps with it.
  const secrets = new SecretVault();
  const apps = appManager(config, { nginx, switchMode, prepareNginx, releases, secrets, sampler, emit: (event) => link.send({ event }), log });
  await apps.recover();
  const requestCounters = new RequestCounterSource({ nginx, switchMode, colorOf: (app, port) => colorOfPort(apps.snapshot(app)?.definition, port), log: log.child("requests") });
  const metrics = new AgentMetrics({ instances: () => apps.instances(), connected: () => link?.state === "online", requests: () => requestCounters.read() });
  if (config.metricsListen) {
    const { host, port } = config.metricsListen;
    await metrics.listen(host, port);
    log.info("metrics at /metrics", { listen: `${host}:${port}` });
  }
  const dispatcher = new CommandDispatcher(log.child("commands"), Date.now, (id) => apps.storedResult(id), (operation, status, seconds) =>
    metrics.commandDuration.observe({ operation, status }, seconds),
  );
  const logStreams = new LogStreams(config.stateDir, (lines) => link.send({ logLines: lines }));
  registerHandlers(dispatcher, {
    apps,
    logStreams,
    lb: lbHandlers({ nginx, address: config.address, switchMode, prepareNginx }),
    removeApp: removeAppHandler({ apps, nginx }),
    runHook: hookHandler({
      address: config.address,
      admission: { rootApps: config.rootApps },
      releases,
      live: (app) => apps.snapshot(app)?.live,
      emit: (event) => link.send({ event }),
      journal: new HookJournal(config.stateDir),
      log: log.child("hooks"),
    }),
  });
  let refuse!: (refusal: cutover.v1.Refusal) => void;
  const refused = new Promise<cutover.v1.Refusal>((resolve) => (refuse = resolve));
  let restart!: () => void;
  const restartRequested = new Promise<void>((resolve) => (restart = resolve));
  // Only an agent run from install.sh's files by its wrapper may replace its file; others say why when asked.
  const self = selfFile(process.env, process.argv[1]);
  dispatcher.handle("upgradeAgent", upgradeHandler({ version: AGENT_VERSION, fetchChunk: chunkFetcher(() => link, log), verifiesBundle: (sha, sig) => verifier.verifiesBundle(sha, sig), restart, log: log.child("upgrade") }));
  link = coordinatorLink(config, { identity, nginx, switchMode, requestCounters, upgrades: self.ok, sampler, apps, verifier, enrollmentKeyId, dispatcher, logStreams, refuse, log });
  log.info("starting", { name: identity.name, address: config.address, coordinator: config.coordinatorUrls.join(","), stateDir: config.stateDir, nginx: nginx.kind, switch: switchMode, rootApps: config.rootApps, version: AGENT_VERSION });
  link.start();
  if (self.ok) void confirmAtFirstSession(self.file, link, log);
  const stopWatchingLoop = watchEventLoop(log);
  return {
    link,
    dispatcher,
    refused,
    restartRequested,
    apps,
    nginx,
    stop: () => {
      stopWatchingLoop();
      apps.close();
      link.stop();
    },
  };
}

/** The agent's session with the coordinator: what it says of itself (capabilities, reports) and what it does with what it is sent. */
function coordinatorLink(
  config: AgentConfig,
  parts: {
    identity: Awaited<ReturnType<typeof loadIdentity>>;
    nginx: NginxRunner;
    switchMode: SwitchMode;
    requestCounters: RequestCounterSource;
    /** Run by install.sh's wrapper from its file: it can replace itself (agent.upgrade). */
    upgrades: boolean;
    sampler: ResourceSampler;
    apps: AppManager;
    verifier: CommandVerifier;
    enrollmentKeyId: ReturnType<typeof trustedKeyOfEnrollment>;
    dispatcher: CommandDispatcher;
    logStreams: LogStreams;
    refuse: (refusal: cutover.v1.Refusal) => void;
    log: Logger;
  },
): CoordinatorLink {
  const { identity, nginx, switchMode, requestCounters, sampler, apps, verifier, enrollmentKeyId, dispatcher, logStreams, log } = parts;
  const coordinators = new CoordinatorUrls({ configured: config.coordinatorUrls, rules: config.coordinatorRules, stateDir: config.stateDir, log: log.child("link") });
  const link: CoordinatorLink = new CoordinatorLink({
    coordinators,
    fingerprint: config.coordinatorFingerprint,
    identity,
    enrollmentToken: config.enrollmentToken,
    address: config.address,
    labels: config.labels,
    capabilities: [...BASE_CAPABILITIES, `nginx.${nginx.kind}`, "nginx.reload", ...(switchMode === "live" ? ["nginx.live"] : []), ...(requestCounters.counting ? [COUNTS_REQUESTS] : []), ...(parts.upgrades ? [UPGRADES_ITSELF] : [])],
    agentVersion: AGENT_VERSION,
    reconnectBaseMs: config.reconnectBaseMs,
    reconnectCapMs: config.reconnectCapMs,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    log: log.child("link"),
    report: async () => ({ resources: await sampler.sample(), instances: apps.instances(), requests: () => requestCounters.read(), keptReleases: () => keptReleases(config.stateDir) }),
    onWelcome: welcomeHandler({ verifier, coordinators, enrollmentKeyId, log, enrolled: () => markEnrolled(config.stateDir, identity) }),
    onCommand: commandHandler({ verifier, dispatcher, log, heartbeatNow: () => link.heartbeatNow() }),
    onPermanentRefusal: parts.refuse,
    onDisconnect: () => logStreams.stopAll(),
  });
  return link;
}

/**
 * At the first session: this file came online, so a self-upgrade trial ends here (the wrapper
 * keeps it); a rollback the wrapper did is logged and told to the coordinator, once.
 */
async function confirmAtFirstSession(file: string, link: CoordinatorLink, log: Logger): Promise<void> {
  await link.whenOnline();
  const { confirmed, rolledBack } = await settleTrial(file).catch((error: Error) => {
    log.error("cannot settle the upgrade trial", { file, error: error.message });
    return { confirmed: false, rolledBack: undefined };
  });
  if (confirmed) log.info("upgrade confirmed: this agent file came online", { file, version: AGENT_VERSION });
  if (rolledBack) {
    log.error("the last upgrade was rolled back", { file, reason: rolledBack });
    link.send({ event: { atUnixMs: Date.now(), kind: UPGRADE_ROLLED_BACK_EVENT, message: rolledBack } });
  }
}

/** The nginx runner of the configured mode, and the switch mode it supports ("live" needs the Lua module). */
async function openNginx(config: AgentConfig, log: Logger): Promise<{ nginx: NginxRunner; switchMode: SwitchMode }> {
  const nginx: NginxRunner =
    config.nginxMode === "managed"
      ? // --switch reload uses nothing of the Lua module: its nginx reloads without starting it.
        await createNginxRunner({ mode: "managed", stateDir: config.stateDir, lua: config.switchMode !== "reload" })
      : await createNginxRunner({ mode: "system", probeToken: loadProbeToken(join(config.stateDir, PROBE_TOKEN_FILE)) });
  try {
    ensureSocketDir(dirname(nginx.controlSocket));
  } catch (error) {
    // A host problem the operator must fix; restarting cannot (exit 78, like bad config).
    if (isNginxError(error, "ERR_NGINX_SOCKET_DIR_UNSAFE")) throw new ConfigError(error.message);
    throw error;
  }
  const lua = nginx.detectCapabilities().lua;
  if (config.switchMode === "live" && !lua) {
    log.warn("--switch live needs nginx's Lua module (Debian: libnginx-mod-http-lua); using reload");
  }
  return { nginx, switchMode: config.switchMode !== "reload" && lua ? "live" : "reload" };
}

/**
 * Before every switch: the managed nginx is started (first time), adopted, or
 * started again if it died (reported through `notify`); a system nginx that is
 * not running makes the switch fail with ERR_NGINX_NOT_RUNNING in the nginx module.
 */
function nginxPreparer(nginx: NginxRunner, log: Logger, notify: (message: string) => void): () => Promise<void> {
  let nginxReady: Promise<void> | undefined;
  let nginxStartedOnce = false;
  return () => {
    if (nginx.kind !== "managed") return Promise.resolve();
    if (nginxReady && nginx.isRunning()) return nginxReady;
    if (nginxStartedOnce && !nginx.isRunning()) {
      log.warn("the managed nginx is not running: starting it again");
      notify("nginx was not running; the agent started it again");
    }
    nginxReady = (nginx as ManagedNginx)
      .start()
      .then(() => {
        nginxStartedOnce = true;
      })
      .catch((error: Error) => {
        nginxReady = undefined;
        throw error;
      });
    return nginxReady;
  };
}

/** Artifact chunks from the coordinator; one that restarts mid-download is waited for (it is back in seconds), not a failed deploy. */
function chunkFetcher(link: () => CoordinatorLink, log: Logger): ChunkSource {
  return async (sha256, offset, length) => {
    for (let attempt = 1; ; attempt++) {
      try {
        const chunk = await link().requestArtifactChunk(sha256, offset, length);
        return { data: chunk.data, totalSize: Number(chunk.totalSize), error: chunk.error };
      } catch (error) {
        if (attempt >= FETCH_ATTEMPTS) throw error;
        log.warn("artifact download interrupted; waiting for the coordinator", { sha256: sha256.slice(0, 12), offset, attempt, error: (error as Error).message });
        const back = await Promise.race([link().whenOnline().then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), FETCH_RECONNECT_WAIT_MS).unref())]);
        if (!back) throw error;
      }
    }
  };
}

/** The apps of this host: their colors' supervisors, their nginx sites, their releases. */
function appManager(
  config: AgentConfig,
  parts: { nginx: NginxRunner; switchMode: SwitchMode; prepareNginx: () => Promise<void>; releases: ReturnType<typeof releaseDirs>; secrets: SecretVault; sampler: ResourceSampler; emit: (event: cutover.v1.Event.$Properties) => void; log: Logger },
): AppManager {
  const { nginx, switchMode, prepareNginx, releases, secrets, sampler, log } = parts;
  return new AppManager({
    stateDir: config.stateDir,
    secrets,
    proxy: new NginxAppProxy({ nginx, address: config.address, switchMode, prepare: prepareNginx, tlsFiles: new TlsFileStore(join(config.stateDir, "tls"), secrets) }),
    colors: new Supervisors({ stateDir: config.stateDir, address: config.address, log: log.child("instances"), rootApps: config.rootApps, secrets }),
    admission: { rootApps: config.rootApps },
    releases,
    resources: async () => {
      const r = await sampler.sample();
      return { memAvailableBytes: Number(r.memAvailableBytes), diskFreeBytes: Number(r.disks?.[0]?.freeBytes ?? 0), loadPerCore: (r.load1 ?? 0) / Math.max(1, cpus().length) };
    },
    emit: parts.emit,
    log: log.child("apps"),
  });
}

/** One handler per operation the coordinator may send (ping is the dispatcher's own). */
function registerHandlers(
  dispatcher: CommandDispatcher,
  parts: { apps: AppManager; logStreams: LogStreams; lb: ReturnType<typeof lbHandlers>; removeApp: ReturnType<typeof removeAppHandler>; runHook: ReturnType<typeof hookHandler> },
): void {
  const { apps, logStreams, lb } = parts;
  dispatcher.handle("removeApp", parts.removeApp);
  dispatcher.handle("runHook", parts.runHook);
  dispatcher.handle("deploy", (command) => apps.deploy(command.commandId, command.deploy ?? {}));
  dispatcher.handle("tailLogs", async (command) => {
    const sent = logStreams.start(command.tailLogs ?? {});
    return { status: v1.CommandResult.Status.OK, message: `${sent} line(s) sent` };
  });
  dispatcher.handle("stopLogs", async (command) => {
    logStreams.stop(command.stopLogs?.streamId ?? "");
    return { status: v1.CommandResult.Status.OK };
  });
  dispatcher.handle("applyLb", (command) => lb.applyLb(command));
  dispatcher.handle("waitDrained", (command) => lb.waitDrained(command));
  dispatcher.handle("rollback", (command) => apps.rollback(command.commandId, command.rollback?.app ?? "", command.rollback?.inPlace ?? false, command.rollback?.secrets));
}

/** A signed command from the link: verified (and its sequence saved) before it is dispatched; refused with a reason otherwise. */
function commandHandler(parts: { verifier: CommandVerifier; dispatcher: CommandDispatcher; log: Logger; heartbeatNow: () => void }): LinkOptions["onCommand"] {
  const { verifier, dispatcher, log, heartbeatNow } = parts;
  return async (outer, reply, sessionNonce) => {
    const opened = await verifier.open(outer, sessionNonce).catch((error: Error) => {
      // The sequence could not be made durable (disk full?): acting now could replay after a crash.
      log.error("cannot save the command sequence; refusing the command", { commandId: outer.commandId, error: error.message });
      return { ok: false as const, code: "ERR_COMMAND_UNSAVED" as const, message: `the agent cannot save its command sequence: ${error.message}` };
    });
    if (!opened.ok) {
      log.warn("refused a command", { commandId: outer.commandId, code: opened.code, reason: opened.message });
      reply({ commandId: outer.commandId, status: v1.CommandResult.Status.REJECTED, errorCode: opened.code, message: opened.message });
      return;
    }
    const command = opened.command;
    void dispatcher.dispatch(command).then((result) => {
      reply(result);
      if (command.operation !== "ping") heartbeatNow();
    });
  };
}

/** This host's identity from the state dir (made at the first start), with a warning where it cannot work as configured. */
async function loadIdentity(config: AgentConfig, log: Logger): ReturnType<typeof loadOrCreateIdentity> {
  const identity = await loadOrCreateIdentity(config.stateDir, config.name);
  if (identity.name !== config.name) {
    log.warn("state dir belongs to another host name; keeping the enrolled name", { enrolled: identity.name, configured: config.name });
  }
  if (!identity.enrolled && !config.enrollmentToken) {
    log.warn("not enrolled yet and no enrollment token given: the coordinator will refuse this agent (pass --token)");
  }
  return identity;
}
