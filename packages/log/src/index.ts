export { createLogger, formatLine } from "./logger.js";
export type { Logger, LogLevel, LogFields, LoggerOptions } from "./logger.js";
export { formatBytes, backoffDelayMs } from "./units.js";
export { watchEventLoop } from "./loop-stall.js";
