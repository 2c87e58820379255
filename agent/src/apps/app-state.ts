import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { isValidName, type cutover } from "@cutover/protocol";
import { writeFileAtomic } from "../state/atomic-write.js";
import { appDefinitionOf, type AppDefinition } from "./definition.js";
import { planOf, type Transaction } from "./transaction.js";

export type Color = "blue" | "green";
export const otherColor = (color: Color): Color => (color === "blue" ? "green" : "blue");

/** Results of recent commands, so a repeated command id is answered from here even after an agent restart. */
export interface StoredResult {
  commandId: string;
  result: cutover.v1.CommandResult.$Properties;
}

/** A release as it was deployed: enough to start it again. */
export interface ReleaseRef {
  release: string;
  sha256?: string;
  definition: AppDefinition;
}

/** One app's saved state on this host. */
export interface AppSnapshot {
  /** The live release's definition (before the first deploy finishes, the one being deployed). */
  definition: AppDefinition;
  /** The color nginx points at, with its release; null before the first deploy finishes. */
  live: { color: Color; release: string } | null;
  /** The color that served before, kept warm until `stopAfter` (Unix ms) for an instant rollback. */
  previous: { color: Color; release: string; stopAfter: number } | null;
  /** What a rollback returns to, even once the old color has stopped: its release, artifact and definition. */
  rollbackTarget: ReleaseRef | null;
  /** The artifact and definition of the live release (becomes rollbackTarget on the next deploy). */
  liveRef: ReleaseRef | null;
  transaction: Transaction | null;
  results: StoredResult[];
}

const RESULTS_KEPT = 32;

/** Saved app snapshots under STATE/apps/<app>/state.json; every write is atomic. */
export class AppStateStore {
  constructor(private readonly stateDir: string) {}

  private path(app: string): string {
    if (!isValidName(app)) throw new Error(`invalid app name ${JSON.stringify(app)}`);
    return join(this.stateDir, "apps", app, "state.json");
  }

  load(app: string): AppSnapshot | undefined {
    const path = this.path(app);
    return existsSync(path) ? snapshotOf(JSON.parse(readFileSync(path, "utf8")) as AppSnapshot) : undefined;
  }

  async save(app: string, snapshot: AppSnapshot): Promise<void> {
    const path = this.path(app);
    mkdirSync(join(path, ".."), { recursive: true, mode: 0o700 });
    snapshot.results = snapshot.results.slice(-RESULTS_KEPT);
    await writeFileAtomic(path, JSON.stringify(snapshot, null, 2), 0o600);
  }

  /** Deletes the app's saved state (`cutover apps remove`); true when there was some. */
  remove(app: string): boolean {
    const dir = join(this.path(app), "..");
    const existed = existsSync(dir);
    rmSync(dir, { recursive: true, force: true });
    return existed;
  }

  apps(): string[] {
    const dir = join(this.stateDir, "apps");
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((name) => isValidName(name) && existsSync(join(dir, name, "state.json")));
  }

  storedResult(commandId: string): cutover.v1.CommandResult.$Properties | undefined {
    for (const app of this.apps()) {
      const found = this.load(app)?.results.find((r) => r.commandId === commandId);
      if (found) return found.result;
    }
    return undefined;
  }
}

/**
 * A snapshot as read from disk, its definitions checked again: one saved by an
 * older agent holds wire definitions, and transactions without a plan or a
 * definition of their own.
 */
function snapshotOf(saved: AppSnapshot): AppSnapshot {
  const refOf = (ref: ReleaseRef | null): ReleaseRef | null => ref && { ...ref, definition: appDefinitionOf(ref.definition) };
  const definition = appDefinitionOf(saved.definition);
  const tx = saved.transaction as (Omit<Transaction, "plan" | "definition"> & Partial<Transaction>) | null;
  return {
    ...saved,
    definition,
    liveRef: refOf(saved.liveRef),
    rollbackTarget: refOf(saved.rollbackTarget),
    transaction: tx && { ...tx, plan: planOf(tx, saved.live?.color), definition: tx.definition ? appDefinitionOf(tx.definition) : definition },
  };
}
