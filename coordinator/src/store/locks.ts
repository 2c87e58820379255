import { statement, type Db } from "./database.js";

/** An app held against deploys and rollbacks until whoever needs it released releases it. */
export interface AppLock {
  app: string;
  /** The API token's name that acquired it. */
  holder: string;
  /** What the holder said, shown to everyone the lock refuses. */
  reason: string;
  /** Milliseconds since the epoch. */
  acquiredAt: number;
}

/** What acquire answers: the lock it took, or the one already held (by anyone, the caller too). */
export type AcquireResult = { acquired: true; lock: AppLock } | { acquired: false; held: AppLock };

interface LockRow {
  app: string;
  holder: string;
  reason: string;
  acquired_at: number;
}

function lockOf(row: LockRow): AppLock {
  return { app: row.app, holder: row.holder, reason: row.reason, acquiredAt: row.acquired_at };
}

/**
 * App locks (`cutover lock`): one row per locked app. Acquiring is one INSERT
 * that loses to a row already there, so two callers racing for a free app
 * cannot both win; a lock is not re-entrant (a second acquire by its holder
 * is refused too, naming the lock it already holds).
 */
export class LockStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  acquire(app: string, holder: string, reason: string): AcquireResult {
    return this.db.transaction((): AcquireResult => {
      const inserted = statement(this.db, "INSERT INTO app_locks (app, holder, reason, acquired_at) VALUES (?, ?, ?, ?) ON CONFLICT (app) DO NOTHING").run(app, holder, reason, this.now());
      const lock = this.get(app)!;
      return inserted.changes === 1 ? { acquired: true, lock } : { acquired: false, held: lock };
    })();
  }

  get(app: string): AppLock | null {
    const row = statement(this.db, "SELECT app, holder, reason, acquired_at FROM app_locks WHERE app = ?").get(app) as LockRow | undefined;
    return row ? lockOf(row) : null;
  }

  list(): AppLock[] {
    return (statement(this.db, "SELECT app, holder, reason, acquired_at FROM app_locks ORDER BY app").all() as LockRow[]).map(lockOf);
  }

  /** Removes the app's lock; answers what it removed (null: the app was not locked). */
  release(app: string): AppLock | null {
    const row = statement(this.db, "DELETE FROM app_locks WHERE app = ? RETURNING app, holder, reason, acquired_at").get(app) as LockRow | undefined;
    return row ? lockOf(row) : null;
  }
}

/** How a lock reads in a refusal: who, since when, and why. */
export function describeLock(lock: AppLock): string {
  return `${lock.app} is locked by ${lock.holder} since ${new Date(lock.acquiredAt).toISOString()}: ${JSON.stringify(lock.reason)}`;
}
