import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ProxyDefinition, TlsSource } from "./definition.js";
import type { SecretVault } from "./secret-vault.js";

/**
 * Where an app site's TLS files are for nginx: a path on the host as it is (admission.ts
 * checked it), or a secret's PEM written to `<dir>/<sha256>.pem`, mode 0600 in a 0700
 * directory. The one place a secret's value reaches the disk, because nginx reads its key
 * from a file at every start and reload; named by content, so a rotated certificate is a
 * new file beside the old one (which keeps serving until nginx -t passes the new config).
 */
export class TlsFileStore {
  constructor(
    private readonly dir: string,
    private readonly secrets: SecretVault,
  ) {}

  /** The two paths nginx reads; throws ERR_SECRET_UNAVAILABLE when a secret is not held. */
  paths(app: string, tls: NonNullable<ProxyDefinition["tls"]>): { certificate: string; key: string } {
    return { certificate: this.path(app, tls.certificate), key: this.path(app, tls.key) };
  }

  private path(app: string, source: TlsSource): string {
    if ("path" in source) return source.path;
    const pem = this.secrets.environment(app, { FILE: source.secret }).FILE!;
    const path = join(this.dir, `${createHash("sha256").update(pem).digest("hex")}.pem`);
    if (!existsSync(path)) {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const temp = `${path}.tmp-${process.pid}`;
      writeFileSync(temp, pem, { mode: 0o600 });
      renameSync(temp, path);
    }
    return path;
  }
}
