import { mkdirSync } from "node:fs";
import { createLogger, type Logger } from "@cutover/log";
import type { cutover } from "@cutover/protocol";
import { CommandDispatcher } from "./commands/dispatcher.js";
import type { AgentConfig } from "./config.js";
import { loadOrCreateIdentity, markEnrolled } from "./identity.js";
import { ResourceSampler } from "./resources.js";
import { CoordinatorLink } from "./session/coordinator-link.js";
import { AGENT_VERSION } from "./version.js";

/** Capabilities this agent build announces in Hello. */
export const BASE_CAPABILITIES = ["ping"];

export interface RunningAgent {
  link: CoordinatorLink;
  dispatcher: CommandDispatcher;
  stop(): void;
  /** Resolves with a message when the coordinator refuses the agent for good. */
  refused: Promise<cutover.v1.Refusal>;
}

/** Wires identity, resource reports, the coordinator link and command handling together. */
export function startAgent(config: AgentConfig, log: Logger = createLogger("agent")): RunningAgent {
  mkdirSync(config.stateDir, { recursive: true, mode: 0o700 });
  const identity = loadOrCreateIdentity(config.stateDir, config.name);
  if (identity.name !== config.name) {
    log.warn("state dir belongs to another host name; keeping the enrolled name", { enrolled: identity.name, configured: config.name });
  }
  if (!identity.enrolled && !config.enrollmentToken) {
    log.warn("not enrolled yet and no enrollment token given: the coordinator will refuse this agent (pass --token)");
  }
  const sampler = new ResourceSampler([config.stateDir]);
  const dispatcher = new CommandDispatcher(log.child("commands"));
  let refuse!: (refusal: cutover.v1.Refusal) => void;
  const refused = new Promise<cutover.v1.Refusal>((resolve) => (refuse = resolve));
  const link = new CoordinatorLink({
    url: config.coordinatorUrl,
    identity,
    enrollmentToken: config.enrollmentToken,
    address: config.address,
    labels: config.labels,
    capabilities: BASE_CAPABILITIES,
    agentVersion: AGENT_VERSION,
    reconnectBaseMs: config.reconnectBaseMs,
    reconnectCapMs: config.reconnectCapMs,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    log: log.child("link"),
    report: async () => ({ resources: await sampler.sample(), instances: [] }),
    onWelcome: (welcome) => {
      if (welcome.enrolled) log.info("enrolled with the coordinator", { hostId: welcome.hostId });
      markEnrolled(config.stateDir, identity);
    },
    onCommand: (command, reply) => void dispatcher.dispatch(command).then(reply),
    onPermanentRefusal: refuse,
  });
  log.info("starting", { name: identity.name, address: config.address, coordinator: config.coordinatorUrl, stateDir: config.stateDir, version: AGENT_VERSION });
  link.start();
  return { link, dispatcher, refused, stop: () => link.stop() };
}
