/**
 * Enrollment tokens name the coordinator key they were issued under:
 * `cte_<secret>.<key id>`, the key id being the base64url sha256 of the
 * coordinator's raw Ed25519 public key. An agent enrolling with such a token
 * pins only that key, so whoever answers first on a link the agent cannot
 * authenticate (plain ws://, a wrong fingerprint) cannot become its coordinator.
 */
export const ENROLLMENT_TOKEN_PREFIX = "cte_";
const KEY_ID_LENGTH = 43;

/** A new enrollment token for `secret` issued under the coordinator key with id `keyId` (base64url sha256 of the raw key). */
export function formatEnrollmentToken(secret: string, keyId: string): string {
  return `${ENROLLMENT_TOKEN_PREFIX}${secret}.${keyId}`;
}

/** The coordinator key id an enrollment token names, or undefined when it names none (not a token of this form). */
export function enrollmentTokenKeyId(token: string): string | undefined {
  if (!token.startsWith(ENROLLMENT_TOKEN_PREFIX)) return undefined;
  const dot = token.lastIndexOf(".");
  const keyId = dot < 0 ? "" : token.slice(dot + 1);
  return /^[A-Za-z0-9_-]+$/.test(keyId) && keyId.length === KEY_ID_LENGTH ? keyId : undefined;
}
