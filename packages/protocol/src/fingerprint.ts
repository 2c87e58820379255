/**
 * A certificate fingerprint as cutover prints and compares it: "sha256:AB:CD:…"
 * (upper-case hex pairs), from what an operator may type — with or without the
 * prefix and the colons.
 */
export function normalizeFingerprint(text: string): string {
  const hex = text.replace(/^sha256:/i, "").replace(/:/g, "").toUpperCase();
  return `sha256:${hex.match(/.{2}/g)?.join(":") ?? ""}`;
}

/** True when `text` looks like a sha256 fingerprint (32 bytes of hex). */
export function isFingerprint(text: string): boolean {
  return /^(sha256:)?([0-9A-Fa-f]{2}:?){32}$/.test(text);
}
