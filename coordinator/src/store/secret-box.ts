import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PRIVATE_FILE_MODE } from "./database.js";

/** DATA_DIR/secrets.key: 32 random bytes, 0600, made on first start. Whoever holds it and the store reads every secret. */
export const SECRETS_KEY_FILE = "secrets.key";
const KEY_BYTES = 32;
/** AES-GCM's recommended nonce size; a random one per seal (2^32 seals per key stay far below the collision bound). */
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const CIPHER = "aes-256-gcm";

/** A secret that does not open: the key is not the one it was sealed with, or the bytes or their app/name were changed. */
export class SecretUnreadable extends Error {
  readonly code = "ERR_SECRET_UNREADABLE";
}

/**
 * Loads the coordinator's secrets key, creating it on first start (`wx`: never
 * over an existing file). Its mode is set to 0600 at every start; a file that
 * is not 32 bytes is refused, naming it, rather than replaced: every sealed
 * secret depends on it.
 */
export function loadOrCreateSecretsKey(dataDir: string): Buffer {
  const path = join(dataDir, SECRETS_KEY_FILE);
  if (!existsSync(path)) writeFileSync(path, randomBytes(KEY_BYTES), { mode: PRIVATE_FILE_MODE, flag: "wx" });
  chmodSync(path, PRIVATE_FILE_MODE);
  const key = readFileSync(path);
  if (key.length !== KEY_BYTES) throw new Error(`${path} is ${key.length} bytes, not the ${KEY_BYTES} of a secrets key; restore it from a backup (the app secrets in the store were sealed with it)`);
  return key;
}

/** What a sealed value is bound to: the app and the secret's name, so a row moved to another app or name does not open. */
function aadOf(app: string, name: string): Buffer {
  return Buffer.from(JSON.stringify(["cutover.v1.secret", app, name]), "utf8");
}

/** AES-256-GCM with the app and name as additional data: nonce (12) ‖ ciphertext ‖ tag (16). */
export function sealSecret(key: Buffer, app: string, name: string, value: string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv(CIPHER, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aadOf(app, name));
  const ciphertext = Buffer.concat([cipher.update(value, "utf8"), cipher.final()]);
  return Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]);
}

/** The value `sealSecret` sealed for this app and name; SecretUnreadable for another key, app or name, or changed bytes. */
export function openSecret(key: Buffer, app: string, name: string, sealed: Buffer): string {
  const unreadable = () => new SecretUnreadable(`the stored secret ${name} of ${app} does not open with DATA_DIR/${SECRETS_KEY_FILE}: the key was replaced or the store was altered; set it again with \`cutover secret set ${app} ${name}\``);
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw unreadable();
  const decipher = createDecipheriv(CIPHER, key, sealed.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(aadOf(app, name));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]).toString("utf8");
  } catch {
    throw unreadable();
  }
}
