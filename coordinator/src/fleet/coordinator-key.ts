import { createHash, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The coordinator's Ed25519 key: every command it sends is signed with it. */
export interface CoordinatorKey {
  publicKey: Uint8Array;
  /** base64url sha256 of the raw public key: named in enrollment tokens (see @cutover/protocol enrollment-token). */
  keyId: string;
  sign(data: Uint8Array): Uint8Array;
}

export const COORDINATOR_KEY_FILE = "coordinator-key.pem";

/** Loads DATA_DIR/coordinator-key.pem (0600), creating it on first start. */
export function loadOrCreateCoordinatorKey(dataDir: string): CoordinatorKey {
  const path = join(dataDir, COORDINATOR_KEY_FILE);
  let privateKey: KeyObject;
  if (existsSync(path)) {
    privateKey = createPrivateKey(readFileSync(path, "utf8"));
  } else {
    privateKey = generateKeyPairSync("ed25519").privateKey;
    writeFileSync(path, privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600, flag: "wx" });
  }
  const { x } = privateKey.export({ format: "jwk" }) as { x: string };
  const publicKey = Buffer.from(x, "base64url");
  return { publicKey, keyId: createHash("sha256").update(publicKey).digest("base64url"), sign: (data) => sign(null, data, privateKey) };
}
