/**
 * Commands authenticated per session (capability "commands.mac"): one Ed25519 signature per
 * session instead of one per command.
 *
 * The agent sends a fresh X25519 share in Hello; the coordinator answers with its own in
 * Welcome and signs both shares inside the WelcomeProof. Once that signature verifies under the
 * pinned coordinator key, both sides hold
 *
 *   key = HKDF-SHA256(ikm = X25519(shares), salt = Challenge.nonce, info = commandKeyInfo(host id))
 *
 * and every command on the session carries `mac` = HMAC-SHA256(key, Command.signed) with a
 * sequence that starts at 1 on the session and only rises. The key lives in memory for the
 * session only: a command recorded on one session has no valid MAC on any other.
 *
 * This file only names the constants both sides must agree on; the crypto is node:crypto on
 * each side (this package uses no Node APIs).
 */

/** The capability an agent announces in Hello when it sends a session_key_share and takes Command.mac. */
export const COMMAND_MAC = "commands.mac";

/** Raw X25519 public key length (Hello/Welcome.session_key_share). */
export const KEY_SHARE_BYTES = 32;

/** HMAC-SHA256 length (Command.mac) and the derived key's length. */
export const MAC_BYTES = 32;

/** HKDF `info` for the command key: bound to the host the Welcome names. */
export function commandKeyInfo(hostId: string): string {
  return `cutover.v1.command-key:${hostId}`;
}
