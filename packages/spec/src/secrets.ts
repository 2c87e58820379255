import type { AppSpec, EnvValue, SecretRef } from "./types.js";

/** True for a `run.env` value that references a secret rather than holding its text. */
export function isSecretRef(value: EnvValue): value is SecretRef {
  return typeof value === "object" && value !== null && typeof value.secret === "string";
}

/** The names of the secrets a spec references, each once, in the order `run.env` names them. */
export function secretNamesOf(spec: Pick<AppSpec, "run">): string[] {
  return [...new Set(Object.values(spec.run.env).filter(isSecretRef).map((ref) => ref.secret))];
}
