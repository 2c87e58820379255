import { secretNamesOf, type AppSpec } from "@cutover/spec";
import { ApiError } from "../api/errors.js";
import type { RolloutDeps } from "./run.js";
import { SecretUnreadable } from "../store/secret-box.js";
import type { SecretStore } from "../store/secrets.js";

/** What a deploy or rollback runs with: the rollout deps, the app secrets always there. */
export type SecretRolloutDeps = RolloutDeps & { secrets: SecretStore };

/**
 * ERR_SECRET_UNKNOWN naming the secrets the spec's run.env references and the
 * app does not have (undefined when every one is set): a deploy is refused
 * before anything is saved or sent, rather than fail on every host at start.
 */
export function unsetSecretsRefusal(deps: Pick<SecretRolloutDeps, "secrets">, spec: AppSpec, done = "nothing was deployed"): ApiError | undefined {
  const unset = deps.secrets.missing(spec.app, secretNamesOf(spec));
  if (unset.length === 0) return undefined;
  return new ApiError(
    412,
    "ERR_SECRET_UNKNOWN",
    `run.env references the secret${unset.length === 1 ? "" : "s"} ${unset.join(", ")}, which ${spec.app} does not have; ${done} (\`cutover secret set ${spec.app} ${unset[0]}\` sets it; \`cutover secret list ${spec.app}\` shows the names set)`,
  );
}

/**
 * The values of the secrets the spec references, for its Deploy commands; a
 * stored secret that does not open (the secrets key was replaced) refuses the
 * deploy naming it, with a 500: the store, not the request, is at fault.
 */
export function secretValues(deps: Pick<SecretRolloutDeps, "secrets">, spec: AppSpec): Record<string, string> {
  try {
    return deps.secrets.values(spec.app, secretNamesOf(spec));
  } catch (error) {
    if (error instanceof SecretUnreadable) throw new ApiError(500, error.code, `${error.message}; nothing was deployed`);
    throw error;
  }
}
