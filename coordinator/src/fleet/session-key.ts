import { createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync } from "node:crypto";
import { commandKeyInfo, KEY_SHARE_BYTES, MAC_BYTES } from "@cutover/protocol";

/** This side of a session's command key (see @cutover/protocol session-mac). */
export interface SessionKey {
  /** The coordinator's X25519 share, sent in Welcome and signed inside its WelcomeProof. */
  share: Uint8Array;
  /** HMAC key for this session's commands; never leaves the process. */
  key: Buffer;
}

/**
 * Answers an agent's X25519 share with a fresh one of ours and derives the session's command
 * key; undefined when the share is not a usable X25519 key (the session then gets signed commands).
 */
export function acceptKeyShare(agentShare: Uint8Array, nonce: Uint8Array, hostId: string): SessionKey | undefined {
  if (agentShare.length !== KEY_SHARE_BYTES) return undefined;
  try {
    const { privateKey, publicKey } = generateKeyPairSync("x25519");
    const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(agentShare).toString("base64url") }, format: "jwk" });
    const shared = diffieHellman({ privateKey, publicKey: peer });
    const key = Buffer.from(hkdfSync("sha256", shared, nonce, commandKeyInfo(hostId), MAC_BYTES));
    const share = Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
    return { share, key };
  } catch {
    // A low-order point gives an all-zero secret, which OpenSSL refuses: no key from such a share.
    return undefined;
  }
}

/** Command.mac for the encoded inner command. */
export function commandMac(key: Buffer, signed: Uint8Array): Buffer {
  return createHmac("sha256", key).update(signed).digest();
}
