/**
 * The value formats a spec uses: durations, sizes, percents and host counts.
 * Each parser has a non-throwing form (`undefined` on bad input) for the
 * validator, which collects issues, and a throwing form for callers.
 */
import type { CountOrPercent } from "./types.js";

const DURATION_UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type DurationUnit = keyof typeof DURATION_UNIT_MS;
/** Units in the only order a compound duration may use them (`1h30m`, not `30m1h`). */
const DURATION_UNIT_ORDER: readonly DurationUnit[] = ["h", "m", "s", "ms"];
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|h|m|s))+$/;
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;

/** setTimeout fires at once for longer delays, so no spec duration may exceed this (about 24.8 days). */
export const MAX_DURATION_MS = 2 ** 31 - 1;
export const DURATION_RULE = 'a duration like "250ms", "1.5s", "10m", "1h" or "1m30s"';

/** Milliseconds for a duration string, or undefined when it is not one. Rounds to whole milliseconds. */
export function durationMs(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  let lastRank = -1;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    const rank = DURATION_UNIT_ORDER.indexOf(unit as DurationUnit);
    if (rank <= lastRank) return undefined; // repeated or out-of-order unit: "1s1s", "30s1m"
    lastRank = rank;
    total += Number(amount) * DURATION_UNIT_MS[unit as DurationUnit];
  }
  const ms = Math.round(total);
  return ms <= MAX_DURATION_MS ? ms : undefined;
}

/**
 * Parses `250ms`, `1s`, `1.5s`, `10m`, `1h` or a compound like `1m30s` (units
 * largest first, each once) into milliseconds. Throws RangeError otherwise.
 */
export function parseDuration(text: string): number {
  const ms = typeof text === "string" ? durationMs(text) : undefined;
  if (ms === undefined) throw new RangeError(`invalid duration ${JSON.stringify(text)}: expected ${DURATION_RULE}, at most ${MAX_DURATION_MS}ms`);
  return ms;
}

const SIZE_MULTIPLIER = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 } as const;
// The prefix letter is case-insensitive; the suffix is exactly "B" or "iB" ("b" would mean bits).
const SIZE = /^(\d+(?:\.\d+)?) ?([KkMmGgTt]?)(B|iB)?$/;

export const SIZE_RULE = 'a size like 512 (bytes), "256K", "256M", "1G" or "1T" (binary: K = 1024; KB/KiB, MB/MiB, ... mean the same)';

/** Bytes for a size, or undefined when it is not one. */
export function sizeBytes(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = SIZE.exec(value);
  if (!match) return undefined;
  const [, amount, prefix, suffix] = match as unknown as [string, string, string, string | undefined];
  if (suffix === "iB" && prefix === "") return undefined; // "512iB"
  if (prefix === "" && amount.includes(".")) return undefined; // "1.5" bytes
  const bytes = Math.round(Number(amount) * SIZE_MULTIPLIER[prefix.toLowerCase() as keyof typeof SIZE_MULTIPLIER]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/**
 * Parses a size into bytes: a number of bytes, or a string with an optional
 * binary multiplier `K`, `M`, `G`, `T` (case-insensitive). `KB`/`KiB`,
 * `MB`/`MiB`, `GB`/`GiB`, `TB`/`TiB` are accepted and all mean powers of
 * 1024, because memory and disk limits are almost always meant that way.
 * Throws RangeError otherwise.
 */
export function parseSize(value: string | number): number {
  const bytes = typeof value === "string" || typeof value === "number" ? sizeBytes(value) : undefined;
  if (bytes === undefined) throw new RangeError(`invalid size ${JSON.stringify(value)}: expected ${SIZE_RULE}`);
  return bytes;
}

const PERCENT = /^(\d+(?:\.\d+)?)%$/;

/** The number in "25%", or undefined when the text is not a percent. Range checks are the caller's. */
export function percentValue(text: string): number | undefined {
  const match = PERCENT.exec(text);
  return match ? Number(match[1]) : undefined;
}

/**
 * How many of `total` hosts a count or percent means. A count is capped at the
 * total; a percent rounds up and is at least 1 whenever there is a host, so
 * "10%" of 3 hosts is 1 and never 0.
 */
export function resolveCount(countOrPercent: CountOrPercent, total: number): number {
  if (!Number.isSafeInteger(total) || total < 0) throw new RangeError(`invalid host total ${total}: expected an integer >= 0`);
  if (total === 0) return 0;
  if (countOrPercent.kind === "count") return Math.min(countOrPercent.count, total);
  // The small epsilon keeps float noise (e.g. 30 * 0.1) from rounding up a whole host.
  const share = Math.ceil((total * countOrPercent.percent) / 100 - 1e-9);
  return Math.min(total, Math.max(1, share));
}
