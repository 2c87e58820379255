/**
 * The small toolkit the validator reads YAML values with: it records an issue
 * for every bad value instead of stopping at the first, and names each field
 * the way the spec spells it (`health.http.path`, `run.command[1]`).
 */
import type { SpecIssue } from "./errors.js";

export type RawMapping = Record<string, unknown>;

export class Checker {
  readonly issues: SpecIssue[] = [];

  fail(field: string, expected: string, got?: string): void {
    this.issues.push(got === undefined ? { field, expected } : { field, expected, got });
  }

  /** Records that `value` at `field` is not what was expected. */
  wrong(field: string, expected: string, value: unknown): void {
    this.fail(field, expected, describe(value));
  }
}

/** A YAML mapping being read: where it is and what it holds. */
export class Section {
  constructor(
    readonly c: Checker,
    readonly path: string,
    readonly raw: RawMapping,
  ) {}

  at(key: string): string {
    return fieldPath(this.path, key);
  }

  value(key: string): unknown {
    return Object.hasOwn(this.raw, key) ? this.raw[key] : undefined;
  }

  has(key: string): boolean {
    return this.value(key) !== undefined;
  }

  /**
   * Reads `key` through `parse`, which returns undefined for a bad value.
   * A missing key is an issue only when `required`.
   */
  read<T>(key: string, expected: string, parse: (value: unknown) => T | undefined, required = false): T | undefined {
    const value = this.value(key);
    if (value === undefined && !required) return undefined;
    const parsed = value === undefined ? undefined : parse(value);
    if (parsed === undefined) this.c.wrong(this.at(key), expected, value);
    return parsed;
  }

  /**
   * Opens the mapping at `key`. Missing or empty (`key:` with nothing after it)
   * gives an empty section, or an issue when `required`; anything else that is
   * not a mapping is an issue and gives undefined.
   */
  section(key: string, allowed: readonly string[], expected: string, required = false): Section | undefined {
    const value = this.value(key);
    if (value === undefined || value === null) {
      if (required) this.c.wrong(this.at(key), expected, value);
      return required ? undefined : new Section(this.c, this.at(key), {});
    }
    return openSection(this.c, this.at(key), value, allowed, expected);
  }
}

/** Checks that `value` is a mapping holding only `allowed` keys, recording an issue per stranger. */
export function openSection(c: Checker, path: string, value: unknown, allowed: readonly string[], expected: string): Section | undefined {
  if (!isMapping(value)) {
    c.wrong(path, expected, value);
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const guess = closest(key, allowed);
    c.fail(
      fieldPath(path, key),
      allowed.length > 0 ? `one of the keys ${allowed.join(", ")}` : "no keys here",
      `unknown key ${JSON.stringify(key)}${guess === undefined ? "" : ` (did you mean ${JSON.stringify(guess)}?)`}`,
    );
  }
  return new Section(c, path, value);
}

export function isMapping(value: unknown): value is RawMapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `health` + `http` → `health.http`; keys with dots or slashes get brackets: `hosts["app.io/name"]`. */
export function fieldPath(parent: string, key: string): string {
  if (!PLAIN_KEY.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent === "" ? key : `${parent}.${key}`;
}

/** How a found value reads in an issue: strings quoted, containers by kind, a missing value as "nothing". */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "an empty value";
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (Array.isArray(value)) return value.length > 0 ? "a list" : "an empty list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

/** The allowed key a typo most likely meant, if any is close enough. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}
