import type { AppSpec, EnvValue, SecretRef, TlsFile } from "./types.js";

/** True for a `run.env` value that references a secret rather than holding its text. */
export function isSecretRef(value: EnvValue | TlsFile): value is SecretRef {
  return typeof value === "object" && value !== null && typeof value.secret === "string";
}

/** The names of the secrets a spec references, each once: `run.env`'s in its order, then proxy.tls's. */
export function secretNamesOf(spec: Pick<AppSpec, "run"> & Partial<Pick<AppSpec, "proxy">>): string[] {
  const tls = spec.proxy?.tls;
  const tlsFiles = tls ? [tls.certificate, tls.key] : [];
  const refs = [...Object.values(spec.run.env), ...tlsFiles].filter(isSecretRef);
  return [...new Set(refs.map((ref) => ref.secret))];
}
