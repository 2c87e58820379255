export { startAgent, BASE_CAPABILITIES } from "./agent.js";
export type { RunningAgent } from "./agent.js";
export { resolveAgentConfig, agentEndpoint, parseLabels, ConfigError } from "./config.js";
export type { AgentConfig, AgentSettings } from "./config.js";
export { CommandDispatcher } from "./commands/dispatcher.js";
export { EXIT_REFUSED, EXIT_CONFIG } from "./cli.js";
