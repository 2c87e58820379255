/**
 * One line per event: `2026-11-27T00:00:00.000Z info  component: message key=value ...`.
 * Plain text because operators read it with journalctl and grep; values with
 * spaces are JSON-quoted so the line still splits on spaces.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(component: string): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  /** Lowest level written; default from CUTOVER_LOG_LEVEL or "info". */
  level?: LogLevel;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
}

function formatValue(value: string | number | boolean | null): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

export function formatLine(level: LogLevel, component: string, message: string, fields: LogFields = {}, now = new Date()): string {
  let line = `${now.toISOString()} ${level.padEnd(5)} ${component}: ${message}`;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    line += ` ${key}=${formatValue(value)}`;
  }
  return line;
}

export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const envLevel = process.env.CUTOVER_LOG_LEVEL as LogLevel | undefined;
  const level = options.level ?? (envLevel && envLevel in RANK ? envLevel : "info");
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (at: LogLevel) => (message: string, fields?: LogFields) => {
    if (RANK[at] >= RANK[level]) write(formatLine(at, component, message, fields));
  };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: (sub) => createLogger(`${component}.${sub}`, { level, write }),
  };
}
