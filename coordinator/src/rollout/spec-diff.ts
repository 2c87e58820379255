import { formatBytes } from "@cutover/log";
import type { AppSpec } from "@cutover/spec";

/**
 * One field of the parsed spec that differs: `field` is its dotted path in the
 * parsed (camelCase) spec, e.g. `health.check.path`; `from`/`to` are its JSON
 * values, null where the field is absent.
 */
export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, Json> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `strategy.batch` and `canary.hosts` ({kind, count|percent}) read as one value: `2`, `50%`. */
function isCountOrPercent(value: unknown): boolean {
  return isObject(value) && (value.kind === "count" || value.kind === "percent") && Object.keys(value).length === 2;
}

/** Every leaf of a parsed spec by dotted path; arrays and counts-or-percents are leaves. */
function leaves(value: unknown, prefix: string, into: Map<string, unknown>): Map<string, unknown> {
  if (isObject(value) && !isCountOrPercent(value)) {
    for (const [key, child] of Object.entries(value)) leaves(child, prefix ? `${prefix}.${key}` : key, into);
  } else if (value !== undefined) {
    into.set(prefix, value);
  }
  return into;
}

/**
 * The fields of `after` that differ from `before`, in `after`'s field order
 * (then fields only `before` had): what a deploy of `after` changes in the app's spec.
 */
export function specDiff(before: AppSpec, after: AppSpec): FieldChange[] {
  const old = leaves(before, "", new Map());
  const next = leaves(after, "", new Map());
  const fields = [...next.keys(), ...[...old.keys()].filter((k) => !next.has(k))];
  return fields
    .filter((field) => JSON.stringify(old.get(field)) !== JSON.stringify(next.get(field)))
    .map((field) => ({ field, from: old.get(field) ?? null, to: next.get(field) ?? null }));
}

const UNITS_MS: [number, string][] = [
  [3_600_000, "h"],
  [60_000, "m"],
  [1000, "s"],
];

function formatMs(ms: number): string {
  const unit = UNITS_MS.find(([size]) => ms !== 0 && ms % size === 0);
  return unit ? `${ms / unit[0]}${unit[1]}` : `${ms}ms`;
}

/** A value as the plan's table shows it: durations, sizes and percents with their unit, absent as `(none)`. */
export function formatSpecValue(field: string, value: unknown): string {
  if (value === null || value === undefined) return "(none)";
  if (isCountOrPercent(value)) {
    const v = value as { kind: string; count?: number; percent?: number };
    return v.kind === "count" ? String(v.count) : `${v.percent}%`;
  }
  if (typeof value === "number") {
    if (field.endsWith("Ms")) return formatMs(value);
    if (field.endsWith("Bytes")) return formatBytes(value);
    if (field.endsWith("Percent")) return `${value}%`;
    return String(value);
  }
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** One line per change: `health.check.path: /health_check → /ready`. */
export function renderSpecDiff(changes: FieldChange[]): string[] {
  return changes.map((c) => `${c.field}: ${formatSpecValue(c.field, c.from)} → ${formatSpecValue(c.field, c.to)}`);
}
