/**
 * Names that arrive over the network end up in paths and config files, so each
 * kind has one strict pattern, checked on both sides before use.
 */

/** Host and app names: lower case, digits, dot, dash, underscore; starts alphanumeric; ≤ 63 chars. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
/** Release versions: like names but case-sensitive and with "+" (semver build metadata). */
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
/** Label keys and values. */
const LABEL_KEY = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9._-]{0,63}$/;

export function isValidName(name: string): boolean {
  return NAME.test(name) && !name.includes("..");
}

export function isValidRelease(release: string): boolean {
  return RELEASE.test(release) && !release.includes("..");
}

export function isValidLabel(key: string, value: string): boolean {
  return LABEL_KEY.test(key) && LABEL_VALUE.test(value);
}

export const NAME_RULE = "1–63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit";
export const RELEASE_RULE = "1–64 characters of A-Z, a-z, 0-9, '.', '-', '_', '+', starting with a letter or digit";
export const LABEL_RULE = "key: a-z, 0-9, '.', '-', '_', '/' (≤ 63, alphanumeric at both ends); value: A-Z, a-z, 0-9, '.', '-', '_' (≤ 63)";
