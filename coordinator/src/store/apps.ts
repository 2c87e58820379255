import type { AppSpec } from "@cutover/spec";
import { statement, type Db } from "./database.js";

/** One app host behind the front load balancer, as the coordinator tracks it. */
export interface LbBackendState {
  host: string;
  address: string;
  port: number;
  weight: number;
  state: "up" | "drain" | "down";
  group: "stable" | "canary";
}

/** An app's front upstream: its backends, an optional canary split, and (fleet-bluegreen) which host group is live. */
export interface LbState {
  listenPort: number;
  backends: LbBackendState[];
  canary?: { cookie: string; weightPercent: number; pin?: { kind: "header" | "cookie"; name: string; value: string } };
  liveGroup?: string;
}

/** The last spec each app was deployed with: rollback and status need it when no spec file is at hand. */
export class AppStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  save(spec: AppSpec, specFile: string): void {
    statement(this.db, "INSERT INTO apps (name, spec, spec_file, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, spec_file = excluded.spec_file, updated_at = excluded.updated_at")
      .run(spec.app, JSON.stringify(spec), specFile, this.now());
  }

  /** The app's front load-balancer upstream as last applied (null before any). */
  lbState(name: string): LbState | null {
    const row = statement(this.db, "SELECT lb_state FROM apps WHERE name = ?").get(name) as { lb_state: string | null } | undefined;
    return row?.lb_state ? (JSON.parse(row.lb_state) as LbState) : null;
  }

  saveLbState(name: string, state: LbState): void {
    statement(this.db, "UPDATE apps SET lb_state = ?, updated_at = ? WHERE name = ?").run(JSON.stringify(state), this.now(), name);
  }

  /** Forgets the app (`cutover apps remove`): its spec and upstream; its deployments and audit rows are kept. */
  remove(name: string): boolean {
    return statement(this.db, "DELETE FROM apps WHERE name = ?").run(name).changes === 1;
  }

  names(): string[] {
    return (statement(this.db, "SELECT name FROM apps ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  }

  get(name: string): AppSpec | undefined {
    const row = statement(this.db, "SELECT spec FROM apps WHERE name = ?").get(name) as { spec: string } | undefined;
    return row && (JSON.parse(row.spec) as AppSpec);
  }
}
