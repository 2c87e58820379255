import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate the test CA issued: PEM files in the CA's directory (the key 0600). */
export interface IssuedCertificate {
  certificatePath: string;
  keyPath: string;
  certificate: string;
  key: string;
}

/**
 * A throwaway certificate authority made by the test with the system's openssl (EC P-256,
 * one day): `issue(names)` signs a server certificate for those DNS names. `remove()` deletes
 * the directory.
 */
export interface TestCa {
  dir: string;
  /** The CA's certificate, PEM: what a client trusts. */
  certificate: string;
  issue(names: readonly string[], file?: string): IssuedCertificate;
  remove(): void;
}

export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), "cutover-ca-"));
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.pem");
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", caCert, "-days", "1", "-subj", "/CN=cutover test CA");
  let serial = 0;
  return {
    dir,
    certificate: readFileSync(caCert, "utf8"),
    issue(names, file = `server-${++serial}`) {
      const keyPath = join(dir, `${file}.key`);
      const certificatePath = join(dir, `${file}.pem`);
      const csr = join(dir, `${file}.csr`);
      const ext = join(dir, `${file}.ext`);
      writeFileSync(ext, `subjectAltName=${names.map((name) => `DNS:${name}`).join(",")}\n`);
      openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", csr, "-subj", `/CN=${names[0]}`);
      openssl("x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-set_serial", String(Date.now() * 100 + serial), "-days", "1", "-extfile", ext, "-out", certificatePath);
      chmodSync(keyPath, 0o600);
      rmSync(csr);
      rmSync(ext);
      return { certificatePath, keyPath, certificate: readFileSync(certificatePath, "utf8"), key: readFileSync(keyPath, "utf8") };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
