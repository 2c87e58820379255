import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./state/atomic-write.js";

/**
 * The agent's Ed25519 key pair, made on first start and kept in the state dir
 * (0600). The public key is the agent's identity to the coordinator.
 */
export interface Identity {
  name: string;
  publicKey: Uint8Array;
  /** True once a coordinator has accepted this key: the enrollment token is no longer needed. */
  enrolled: boolean;
  sign(data: Uint8Array): Uint8Array;
}

interface IdentityFile {
  name: string;
  privateKeyPem: string;
  enrolled: boolean;
}

export const IDENTITY_FILE = "identity.json";

function fromPrivateKey(name: string, privateKey: KeyObject, enrolled: boolean): Identity {
  const jwk = privateKey.export({ format: "jwk" }) as { x: string };
  return {
    name,
    publicKey: Buffer.from(jwk.x, "base64url"),
    enrolled,
    sign: (data) => sign(null, data, privateKey),
  };
}

/** Loads the identity from `stateDir`, creating a new key pair on first start. */
export async function loadOrCreateIdentity(stateDir: string, name: string): Promise<Identity> {
  mkdirSync(stateDir, { recursive: true, mode: 0o711 });
  const path = join(stateDir, IDENTITY_FILE);
  if (existsSync(path)) {
    const file = JSON.parse(readFileSync(path, "utf8")) as IdentityFile;
    return fromPrivateKey(file.name, createPrivateKey(file.privateKeyPem), file.enrolled);
  }
  const { privateKey } = generateKeyPairSync("ed25519");
  const file: IdentityFile = { name, privateKeyPem: privateKey.export({ format: "pem", type: "pkcs8" }).toString(), enrolled: false };
  await writeFileAtomic(path, JSON.stringify(file, null, 2), 0o600);
  return fromPrivateKey(name, privateKey, false);
}

/** Records that the coordinator accepted the key, so later starts do not send the (spent) token. */
export async function markEnrolled(stateDir: string, identity: Identity): Promise<void> {
  if (identity.enrolled) return;
  const path = join(stateDir, IDENTITY_FILE);
  const file = JSON.parse(readFileSync(path, "utf8")) as IdentityFile;
  await writeFileAtomic(path, JSON.stringify({ ...file, enrolled: true }, null, 2), 0o600);
  identity.enrolled = true;
}
