/** Parses "500ms", "5s", "1m30s", "2h" into milliseconds; a bare number is milliseconds. */
export function parseDurationMs(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    total += Number(match[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
    consumed = part.lastIndex;
  }
  if (consumed === 0 || consumed !== trimmed.length) throw new Error(`"${text}" is not a duration (examples: 500ms, 5s, 1m30s)`);
  return Math.round(total);
}

/** Human-friendly byte count: 1.5 GiB, 300 MiB. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 || unit === 0 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/**
 * Reconnect delays: exponential from `baseMs`, capped at `capMs`, with
 * "equal jitter" (half fixed, half random) so a fleet that lost its
 * coordinator at once does not come back at once.
 */
export function backoffDelayMs(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
