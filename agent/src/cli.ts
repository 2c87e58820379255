import { Command, CommanderError } from "commander";
import { createLogger } from "@cutover/log";
import { EXIT_UPGRADE } from "@cutover/protocol";
import { startAgent } from "./agent.js";
import { ConfigError, DEFAULT_CONFIG_PATH, DEFAULT_STATE_DIR, resolveAgentConfig, type AgentSettings } from "./config.js";
import { AGENT_VERSION } from "./version.js";
import { mkdirSync } from "node:fs";
import { agentLogWriter } from "./logs/agent-log.js";

/** Exit code when the coordinator refuses this agent for good (bad token, key mismatch). */
export const EXIT_REFUSED = 2;
/** Exit code for bad flags or config. */
export const EXIT_CONFIG = 78;

export async function main(argv: string[]): Promise<void> {
  const program = new Command("cutover-agent")
    .description("the cutover host daemon: runs app instances, switches the local nginx, reports to the coordinator")
    .version(AGENT_VERSION)
    .option("--config <file>", `YAML config file (default ${DEFAULT_CONFIG_PATH} if it exists)`)
    .option("--coordinator <urls>", "coordinator URL, e.g. wss://coordinator:7400; for several coordinators on one store, every one, comma-separated")
    .option("--token <token>", "one-time enrollment token (first start only)")
    .option("--state-dir <dir>", `where the agent keeps its key and state (default ${DEFAULT_STATE_DIR})`)
    .option("--name <name>", "fleet-unique host name (default: the hostname)")
    .option("--labels <k=v,...>", "labels app specs select hosts by, e.g. role=geoip,zone=a")
    .option("--address <ip>", "address this host's proxy listens on (default: the primary interface's)")
    .option("--max-backoff <duration>", "longest wait between reconnect attempts (default 15s)")
    .option("--nginx <mode>", "system: the host's nginx (conf.d); managed: an nginx of the agent's own in its state dir (default system)")
    .option("--coordinator-fingerprint <sha256>", "pin the coordinator's TLS certificate (printed by `cutover server --tls`)")
    .option("--allow-plain", "allow plain ws:// to a coordinator that is not on loopback")
    .option("--allow-root-apps", "start apps that would run as root (no run.user, or a uid-0 user); refused by default")
    .option("--metrics-listen <host:port>", "serve Prometheus metrics at http://HOST:PORT/metrics (off by default)")
    .option("--switch <mode>", "live (Lua, no reload), reload, or auto: live when the Lua module is installed (default auto)")
    .exitOverride();
  let log = createLogger("agent");
  try {
    program.parse(argv);
    const config = resolveAgentConfig(program.opts<AgentSettings>());
    mkdirSync(config.stateDir, { recursive: true, mode: 0o711 });
    log = createLogger("agent", { write: agentLogWriter(config.stateDir) });
    const agent = await startAgent(config, log);
    const stop = (signal: string) => {
      log.info("stopping; app processes keep running", { signal });
      agent.stop();
      process.exit(0);
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
    const ended = await Promise.race([agent.refused, agent.restartRequested.then(() => "restart" as const)]);
    if (ended === "restart") {
      log.info("exiting for the wrapper to start the new agent file; app processes keep running", { code: EXIT_UPGRADE });
      agent.stop();
      process.exit(EXIT_UPGRADE);
    }
    const refusal = ended;
    process.stderr.write(`cutover-agent: the coordinator refused this agent: ${refusal.message} (${refusal.code})\n`);
    process.exit(EXIT_REFUSED);
  } catch (error) {
    if (error instanceof CommanderError) process.exit(error.exitCode);
    if (error instanceof ConfigError) {
      process.stderr.write(`cutover-agent: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}
