import type { AppSpec } from "@cutover/spec";
import type { Db } from "./database.js";

/** The last spec each app was deployed with: rollback and status need it when no spec file is at hand. */
export class AppStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  save(spec: AppSpec, specFile: string): void {
    this.db
      .prepare("INSERT INTO apps (name, spec, spec_file, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, spec_file = excluded.spec_file, updated_at = excluded.updated_at")
      .run(spec.app, JSON.stringify(spec), specFile, this.now());
  }

  names(): string[] {
    return (this.db.prepare("SELECT name FROM apps ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  }

  get(name: string): AppSpec | undefined {
    const row = this.db.prepare("SELECT spec FROM apps WHERE name = ?").get(name) as { spec: string } | undefined;
    return row && (JSON.parse(row.spec) as AppSpec);
  }
}
