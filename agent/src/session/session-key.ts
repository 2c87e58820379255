import { createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, timingSafeEqual, type KeyObject } from "node:crypto";
import { commandKeyInfo, KEY_SHARE_BYTES, MAC_BYTES } from "@cutover/protocol";

/** The agent's half of a session's key exchange (see @cutover/protocol session-mac): made for one session only. */
export interface KeyShare {
  /** X25519 public key, raw 32 bytes: Hello.session_key_share. */
  share: Uint8Array;
  privateKey: KeyObject;
}

export function newKeyShare(): KeyShare {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return { share: Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url"), privateKey };
}

/** The session's command key from our share and the coordinator's; undefined when its share is not a usable X25519 key. */
export function deriveCommandKey(ours: KeyShare, coordinatorShare: Uint8Array, nonce: Uint8Array, hostId: string): Buffer | undefined {
  if (coordinatorShare.length !== KEY_SHARE_BYTES) return undefined;
  try {
    const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(coordinatorShare).toString("base64url") }, format: "jwk" });
    return Buffer.from(hkdfSync("sha256", diffieHellman({ privateKey: ours.privateKey, publicKey: peer }), nonce, commandKeyInfo(hostId), MAC_BYTES));
  } catch {
    return undefined;
  }
}

/** True when `mac` is HMAC-SHA256 of `signed` under `key` (compared in constant time). */
export function macMatches(key: Buffer, signed: Uint8Array, mac: Uint8Array): boolean {
  if (mac.length !== MAC_BYTES) return false;
  return timingSafeEqual(createHmac("sha256", key).update(signed).digest(), mac);
}
