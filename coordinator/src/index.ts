export { startCoordinator, AGENT_PATH } from "./server.js";
export type { Coordinator, CoordinatorOptions } from "./server.js";
export type { HostView } from "./api/hosts-view.js";
export { main as cliMain } from "./cli/main.js";
export { readEvents } from "./cli/sse.js";
export type { AuditEntry } from "./store/audit.js";
