import { statement, type Db } from "./database.js";
import { openSecret, sealSecret } from "./secret-box.js";

/** A secret as anyone may see it: its name and when and by whom it was set, never its value. */
export interface SecretInfo {
  app: string;
  name: string;
  /** Milliseconds since the epoch. */
  setAt: number;
  /** The API token's name that set it. */
  setBy: string;
}

interface SecretRow {
  app: string;
  name: string;
  set_at: number;
  set_by: string;
}

const infoOf = (row: SecretRow): SecretInfo => ({ app: row.app, name: row.name, setAt: row.set_at, setBy: row.set_by });

/**
 * App secrets (`cutover secret`), sealed with the coordinator's secrets key
 * (secret-box.ts) before they reach the store: the `app_secrets` table holds
 * nonce ‖ ciphertext ‖ tag, bound to the app and name. `values` is the one way
 * out, and only the Deploy and Rollback commands to the app's hosts use it.
 */
export class SecretStore {
  constructor(
    private readonly db: Db,
    private readonly key: Buffer,
    private readonly now: () => number = Date.now,
  ) {}

  /** Sets (or replaces) the app's secret `name`; answers what `list` shows of it. */
  set(app: string, name: string, value: string, by: string): SecretInfo {
    const sealed = sealSecret(this.key, app, name, value);
    const row = statement(
      this.db,
      `INSERT INTO app_secrets (app, name, sealed, set_at, set_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (app, name) DO UPDATE SET sealed = excluded.sealed, set_at = excluded.set_at, set_by = excluded.set_by
       RETURNING app, name, set_at, set_by`,
    ).get(app, name, sealed, this.now(), by) as SecretRow;
    return infoOf(row);
  }

  /** The app's secrets, by name: names and when they were set. */
  list(app: string): SecretInfo[] {
    return (statement(this.db, "SELECT app, name, set_at, set_by FROM app_secrets WHERE app = ? ORDER BY name").all(app) as SecretRow[]).map(infoOf);
  }

  /** Removes the app's secret; answers what it removed (null: there was none by that name). */
  remove(app: string, name: string): SecretInfo | null {
    const row = statement(this.db, "DELETE FROM app_secrets WHERE app = ? AND name = ? RETURNING app, name, set_at, set_by").get(app, name) as SecretRow | undefined;
    return row ? infoOf(row) : null;
  }

  /** Of `names`, those the app has no secret by. */
  missing(app: string, names: readonly string[]): string[] {
    const set = new Set(this.list(app).map((s) => s.name));
    return names.filter((name) => !set.has(name));
  }

  /**
   * The values of the app's secrets `names` (every one of the app's when
   * undefined), opened: for a command to the app's hosts only. A name the app
   * has no secret by is left out (callers check `missing` first).
   */
  values(app: string, names?: readonly string[]): Record<string, string> {
    const rows = statement(this.db, "SELECT name, sealed FROM app_secrets WHERE app = ? ORDER BY name").all(app) as { name: string; sealed: Buffer }[];
    const wanted = names && new Set(names);
    const entries = rows.filter((row) => !wanted || wanted.has(row.name)).map((row): [string, string] => [row.name, openSecret(this.key, app, row.name, row.sealed)]);
    return Object.fromEntries(entries);
  }
}
