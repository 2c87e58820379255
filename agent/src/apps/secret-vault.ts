import { ProcessError } from "../process/index.js";

/**
 * The apps' secret values, in this agent's memory only: they arrive in Deploy
 * and Rollback commands and leave only into the environment of the app's
 * processes. Never written to the state dir or logged, so a restarted agent
 * holds none: the processes it adopts keep running with theirs, but it cannot
 * start an instance whose definition references a secret (a crash restart, a
 * recovery, a cold rollback) until a command brings the values again —
 * ERR_SECRET_UNAVAILABLE says so and what to do.
 */
export class SecretVault {
  readonly #apps = new Map<string, Map<string, string>>();

  /** Keeps what a command brought for the app; a value given again replaces the one held. */
  put(app: string, values: Readonly<Record<string, string>> | null | undefined): void {
    const entries = Object.entries(values ?? {});
    if (entries.length === 0) return;
    let held = this.#apps.get(app);
    if (!held) this.#apps.set(app, (held = new Map()));
    for (const [name, value] of entries) held.set(name, value);
  }

  /**
   * The environment `secretEnv` (variable → secret name) asks for, from the
   * values held; throws ERR_SECRET_UNAVAILABLE naming every secret missing.
   */
  environment(app: string, secretEnv: Readonly<Record<string, string>>): Record<string, string> {
    const held = this.#apps.get(app);
    const env: Record<string, string> = {};
    const missing: string[] = [];
    for (const [variable, secret] of Object.entries(secretEnv)) {
      const value = held?.get(secret);
      if (value === undefined) missing.push(secret);
      else env[variable] = value;
    }
    const unique = [...new Set(missing)];
    if (unique.length > 0) {
      throw new ProcessError(
        "ERR_SECRET_UNAVAILABLE",
        `${app} needs the secret${unique.length === 1 ? "" : "s"} ${unique.join(", ")}, which this agent does not hold: secrets are kept in memory only, never on disk, so an agent that restarted has none until the next command brings them; \`cutover deploy\` (or \`cutover rollback\`) ${app} sends them again`,
      );
    }
    return env;
  }
}
