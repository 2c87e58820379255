import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface TlsMaterial {
  cert: string;
  key: string;
  /** "sha256:AB:CD:..." — what agents pin (--coordinator-fingerprint) and the CLI checks (CUTOVER_FINGERPRINT). */
  fingerprint: string;
}

/** The argv that makes a self-signed certificate for the coordinator (built, then run once). */
export function selfSignedCommand(dir: string, names: string[]): string[] {
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
  return [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
    "-subj", "/CN=cutover-coordinator", "-addext", `subjectAltName=${san}`,
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ];
}

export function fingerprintOf(certPem: string): string {
  return `sha256:${new X509Certificate(certPem).fingerprint256}`;
}

/**
 * DATA_DIR/tls/{cert,key}.pem: made on first start with openssl (self-signed,
 * names: localhost, 127.0.0.1 and the listen host), kept after.
 */
export function loadOrCreateTls(dataDir: string, listenHost: string): TlsMaterial {
  const dir = join(dataDir, "tls");
  const certPath = join(dir, "cert.pem");
  const keyPath = join(dir, "key.pem");
  if (!existsSync(certPath) || !existsSync(keyPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const names = [...new Set(["localhost", "127.0.0.1", listenHost].filter((n) => n && n !== "0.0.0.0" && n !== "::"))];
    try {
      execFileSync("openssl", selfSignedCommand(dir, names), { stdio: ["ignore", "ignore", "pipe"] });
    } catch (error) {
      throw new Error(`cannot make a TLS certificate with openssl (${(error as Error).message.split("\n")[0]}); install openssl or put cert.pem and key.pem in ${dir}`);
    }
  }
  const cert = readFileSync(certPath, "utf8");
  return { cert, key: readFileSync(keyPath, "utf8"), fingerprint: fingerprintOf(cert) };
}
