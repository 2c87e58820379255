import { randomUUID } from "node:crypto";
import { statement, type Db } from "./database.js";

/**
 *   running ◀──resume / promote── paused ◀──pause / canary waits── running
 *   paused ──abort──▶ rolling_back
 *   running ──all hosts done, none failed──▶ succeeded
 *      │    ──done, failures ≤ max_failures──▶ failed   (some hosts kept the old release)
 *      └──failures > max_failures──▶ rolling_back ──▶ rolled_back | failed
 */
export type DeploymentState = "running" | "paused" | "rolling_back" | "succeeded" | "failed" | "rolled_back";
export const FINISHED_STATES: readonly DeploymentState[] = ["succeeded", "failed", "rolled_back"];
const ALLOWED: Record<DeploymentState, DeploymentState[]> = {
  running: ["paused", "rolling_back", "succeeded", "failed"],
  paused: ["running", "rolling_back", "failed"],
  rolling_back: ["rolled_back", "failed"],
  succeeded: [],
  failed: [],
  rolled_back: [],
};

/** One host's part in a deployment. */
export type HostOutcome = "pending" | "running" | "succeeded" | "failed" | "rolled_back" | "skipped";

export type DeploymentKind = "deploy" | "rollback";

export interface DeploymentRecord {
  id: string;
  app: string;
  kind: DeploymentKind;
  release: string;
  strategy: string;
  state: DeploymentState;
  error: string | null;
  createdBy: string;
  createdAt: number;
  finishedAt: number | null;
  artifactSha256: string | null;
}

export interface DeploymentHostRecord {
  hostName: string;
  batch: number;
  state: HostOutcome;
  error: string | null;
  liveColor: string | null;
  release: string | null;
  previousRelease: string | null;
  switchMs: number | null;
  bootMs: number | null;
  /** The agent's whole time on the command (boot and health gate included), ms. */
  totalMs: number | null;
  /** Part of switchMs spent waiting for nginx's old workers (reload mode), ms. */
  handoverMs: number | null;
  /** The id of the command sent for this host's step (written before sending). */
  commandId: string | null;
  startedAt: number | null;
  finishedAt: number | null;
}

export interface DeploymentEvent {
  id: number;
  at: number;
  hostName: string | null;
  kind: string;
  message: string;
}

interface DeploymentRow {
  id: string;
  app: string;
  kind: DeploymentKind;
  release: string;
  strategy: string;
  state: DeploymentState;
  error: string | null;
  created_by: string;
  created_at: number;
  finished_at: number | null;
  artifact_sha256: string | null;
}

const fromRow = (r: DeploymentRow): DeploymentRecord => ({
  id: r.id,
  app: r.app,
  kind: r.kind,
  release: r.release,
  strategy: r.strategy,
  state: r.state,
  error: r.error,
  createdBy: r.created_by,
  createdAt: r.created_at,
  finishedAt: r.finished_at,
  artifactSha256: r.artifact_sha256,
});

function hostFromRow(r: Record<string, unknown>): DeploymentHostRecord {
  return {
    hostName: r.host_name as string,
    batch: r.batch as number,
    state: r.state as HostOutcome,
    error: r.error as string | null,
    liveColor: r.live_color as string | null,
    release: r.release as string | null,
    previousRelease: r.previous_release as string | null,
    switchMs: r.switch_ms as number | null,
    bootMs: r.boot_ms as number | null,
    totalMs: r.total_ms as number | null,
    handoverMs: r.handover_ms as number | null,
    commandId: r.command_id as string | null,
    startedAt: r.started_at as number | null,
    finishedAt: r.finished_at as number | null,
  };
}

type HostUpdate = Partial<Omit<DeploymentHostRecord, "hostName" | "batch">>;

/** A host row's columns by field, with the type each is written as (a multi-row UPDATE's VALUES need them spelled out). */
const HOST_COLUMNS = {
  state: ["state", "TEXT"], error: ["error", "TEXT"], liveColor: ["live_color", "TEXT"], release: ["release", "TEXT"], previousRelease: ["previous_release", "TEXT"],
  switchMs: ["switch_ms", "DOUBLE PRECISION"], bootMs: ["boot_ms", "DOUBLE PRECISION"], totalMs: ["total_ms", "DOUBLE PRECISION"], handoverMs: ["handover_ms", "DOUBLE PRECISION"],
  commandId: ["command_id", "TEXT"], startedAt: ["started_at", "BIGINT"], finishedAt: ["finished_at", "BIGINT"],
} as const satisfies Record<keyof HostUpdate, [string, string]>;

/** Rows written per statement (at most 14 parameters each, far below either engine's limit). */
const ROWS_PER_STATEMENT = 200;

function chunks<T>(items: T[], size: number): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, (i + 1) * size));
}

/** One statement that sets the same columns of many host rows: portable to SQLite (3.33+) and PostgreSQL. */
function hostUpdatesStatement(fields: (keyof HostUpdate)[], rows: number): string {
  const names = fields.map((field) => HOST_COLUMNS[field][0]);
  const row = `(?, ?, ${fields.map((field) => `CAST(? AS ${HOST_COLUMNS[field][1]})`).join(", ")})`;
  return `WITH updated (deployment_id, host_name, ${names.join(", ")}) AS (VALUES ${Array.from({ length: rows }, () => row).join(", ")}) ` +
    `UPDATE deployment_hosts SET ${names.map((name) => `${name} = updated.${name}`).join(", ")} FROM updated ` +
    "WHERE deployment_hosts.deployment_id = updated.deployment_id AND deployment_hosts.host_name = updated.host_name";
}

/** An event not yet written: it has no id until then. */
interface QueuedEvent extends Omit<DeploymentEvent, "id"> {
  deploymentId: string;
}

interface QueuedHostUpdate {
  id: string;
  hostName: string;
  /** The fields to set: what updateHost was given, undefined as null (it clears the column). */
  columns: HostUpdate;
}

/**
 * Deployments, their per-host timelines and events; every step is written here before it is
 * acted on. Host updates and events made in one turn of the event loop are written together at
 * the end of it, a few rows a statement (a batch of 10,000 hosts reports 60,000 events: on
 * PostgreSQL one statement each would stall the coordinator for a minute). Every read and every
 * other write here writes what is queued first, so the order of writes and what reads see are as
 * if each were written at once; a rollout awaits `written()` before it sends the step it recorded.
 */
export class DeploymentStore {
  private readonly listeners = new Map<string, Set<(event: DeploymentEvent) => void>>();
  private queuedHosts = new Map<string, QueuedHostUpdate>();
  private queuedEvents: QueuedEvent[] = [];
  private writeScheduled = false;
  private waiters: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** Called when a deployment reaches a finished state (metrics). */
  onFinished?: (deployment: DeploymentRecord) => void;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  create(input: { app: string; kind: DeploymentKind; release: string; strategy: string; spec: unknown; artifactSha256?: string; createdBy: string; hosts: { name: string; batch: number }[] }): DeploymentRecord {
    const id = randomUUID();
    const at = this.now();
    this.flush();
    this.db.transaction(() => {
      // seq orders deployments created in the same millisecond (SQLite's rowid did; PostgreSQL has none).
      statement(this.db, "INSERT INTO deployments (id, app, kind, release, strategy, spec, artifact_sha256, state, created_by, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM deployments))")
        .run(id, input.app, input.kind, input.release, input.strategy, JSON.stringify(input.spec), input.artifactSha256 ?? null, input.createdBy, at);
      for (const slice of chunks(input.hosts, ROWS_PER_STATEMENT)) {
        statement(this.db, `INSERT INTO deployment_hosts (deployment_id, host_name, batch, state) VALUES ${slice.map(() => "(?, ?, ?, 'pending')").join(", ")}`)
          .run(...slice.flatMap((host) => [id, host.name, host.batch]));
      }
    })();
    return this.get(id)!;
  }

  get(id: string): DeploymentRecord | undefined {
    const row = statement(this.db, "SELECT * FROM deployments WHERE id = ?").get(id) as DeploymentRow | undefined;
    return row && fromRow(row);
  }

  /** The newest deployments of an app, newest first. */
  history(app: string, limit = 20): DeploymentRecord[] {
    return (statement(this.db, "SELECT * FROM deployments WHERE app = ? ORDER BY created_at DESC, seq DESC LIMIT ?").all(app, limit) as DeploymentRow[]).map(fromRow);
  }

  /** The running deployment of an app, if any (one at a time per app). */
  active(app: string): DeploymentRecord | undefined {
    const row = statement(this.db, "SELECT * FROM deployments WHERE app = ? AND state IN ('running', 'paused', 'rolling_back')").get(app) as DeploymentRow | undefined;
    return row && fromRow(row);
  }

  transition(id: string, to: DeploymentState, error?: string): void {
    const current = this.get(id);
    if (!current) throw new Error(`no deployment ${id}`);
    if (!ALLOWED[current.state].includes(to)) throw new Error(`deployment ${id} cannot go from ${current.state} to ${to}`);
    const finished = FINISHED_STATES.includes(to) ? this.now() : null;
    this.flush();
    statement(this.db, "UPDATE deployments SET state = ?, error = COALESCE(?, error), finished_at = ? WHERE id = ?").run(to, error ?? null, finished, id);
    this.addEvent(id, null, "deployment", `${current.state} → ${to}${error ? `: ${error}` : ""}`);
    if (finished !== null) this.onFinished?.(this.get(id)!);
  }

  /**
   * True when the host was sent a step of a deployment of this artifact (its
   * command id is recorded before the command goes out) that is still going or
   * finished after `finishedSince`. What decides whether a host may download an
   * artifact; durable, so a restarted coordinator serves a download in flight.
   */
  sentArtifact(hostName: string, sha256: string, finishedSince: number): boolean {
    this.flush();
    return (
      statement(
        this.db,
        `SELECT 1 FROM deployments d JOIN deployment_hosts h ON h.deployment_id = d.id
         WHERE d.artifact_sha256 = ? AND h.host_name = ? AND h.command_id IS NOT NULL AND (d.finished_at IS NULL OR d.finished_at >= ?) LIMIT 1`,
      ).get(sha256, hostName, finishedSince) !== undefined
    );
  }

  /** Deployments a previous coordinator process left unfinished (to resume or roll back at start-up). */
  unfinished(): DeploymentRecord[] {
    return (statement(this.db, "SELECT * FROM deployments WHERE state IN ('running', 'paused', 'rolling_back') ORDER BY created_at").all() as DeploymentRow[]).map(fromRow);
  }

  /** The spec a deployment was started with. */
  spec(id: string): unknown {
    const row = statement(this.db, "SELECT spec FROM deployments WHERE id = ?").get(id) as { spec: string } | undefined;
    return row && JSON.parse(row.spec);
  }

  hosts(id: string): DeploymentHostRecord[] {
    return (statement(this.db, "SELECT * FROM deployment_hosts WHERE deployment_id = ? ORDER BY batch, host_name").all(id) as Record<string, unknown>[]).map((row) => this.withQueued(id, row));
  }

  /** One host's row (the hot path of a rollout: one indexed read, not the whole deployment). */
  host(id: string, hostName: string): DeploymentHostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM deployment_hosts WHERE deployment_id = ? AND host_name = ?").get(id, hostName) as Record<string, unknown> | undefined;
    return row && this.withQueued(id, row);
  }

  /** The stored row with the changes queued for it, as it will be once they are written. */
  private withQueued(id: string, row: Record<string, unknown>): DeploymentHostRecord {
    const stored = hostFromRow(row);
    const queued = this.queuedHosts.get(`${id}\u0000${stored.hostName}`);
    return queued ? { ...stored, ...queued.columns } : stored;
  }

  /** Changes a host's row; written with the others queued in this turn (await `written()` before acting on it). */
  updateHost(id: string, hostName: string, update: HostUpdate): void {
    const entries = Object.entries(update).filter(([key]) => key in HOST_COLUMNS) as [keyof HostUpdate, unknown][];
    if (entries.length === 0) return;
    const key = `${id}\u0000${hostName}`;
    const queued = this.queuedHosts.get(key) ?? { id, hostName, columns: {} };
    for (const [field, value] of entries) (queued.columns as Record<string, unknown>)[field] = value ?? null;
    this.queuedHosts.set(key, queued);
    this.writeSoon();
  }

  /** Records an event; written with the others queued in this turn, then handed to the subscribers with its id. */
  addEvent(id: string, hostName: string | null, kind: string, message: string): void {
    this.queuedEvents.push({ deploymentId: id, at: this.now(), hostName, kind, message });
    this.writeSoon();
  }

  events(id: string, afterId = 0): DeploymentEvent[] {
    this.flush();
    return (
      statement(this.db, "SELECT id, at, host_name, kind, message FROM deployment_events WHERE deployment_id = ? AND id > ? ORDER BY id").all(id, afterId) as Record<string, unknown>[]
    ).map((r) => ({ id: r.id as number, at: r.at as number, hostName: r.host_name as string | null, kind: r.kind as string, message: r.message as string }));
  }

  /** Calls `listener` for every event added to deployment `id` from now on; returns the unsubscribe function. */
  subscribe(id: string, listener: (event: DeploymentEvent) => void): () => void {
    const set = this.listeners.get(id) ?? new Set();
    set.add(listener);
    this.listeners.set(id, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(id);
    };
  }

  /** Resolves once everything queued so far is written; rejects if the write failed (it is kept, to be tried again). */
  written(): Promise<void> {
    if (this.queuedHosts.size === 0 && this.queuedEvents.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Writes what is queued, in one transaction; then hands the events to their subscribers. Throws if the write fails. */
  flush(): void {
    if ((this.queuedHosts.size === 0 && this.queuedEvents.length === 0) || !this.db.open) return;
    const hosts = this.queuedHosts;
    const events = this.queuedEvents;
    const waiters = this.waiters;
    this.queuedHosts = new Map();
    this.queuedEvents = [];
    this.waiters = [];
    let written: (QueuedEvent & { id: number })[];
    try {
      written = this.db.transaction(() => {
        this.writeHostUpdates([...hosts.values()]);
        return this.insertEvents(events);
      })();
    } catch (error) {
      // Kept for the next write, ahead of anything queued since.
      for (const [key, queued] of this.queuedHosts) hosts.set(key, { ...queued, columns: { ...hosts.get(key)?.columns, ...queued.columns } });
      this.queuedHosts = hosts;
      this.queuedEvents = [...events, ...this.queuedEvents];
      for (const waiter of waiters) waiter.reject(error);
      throw error;
    }
    for (const waiter of waiters) waiter.resolve();
    for (const event of written) for (const listener of this.listeners.get(event.deploymentId) ?? []) listener({ id: event.id, at: event.at, hostName: event.hostName, kind: event.kind, message: event.message });
  }

  private writeSoon(): void {
    if (this.writeScheduled) return;
    this.writeScheduled = true;
    setImmediate(() => {
      this.writeScheduled = false;
      try {
        this.flush();
      } catch {
        // Kept and tried again by the next read or write here; whoever awaits `written()` was told.
      }
    });
  }

  private writeHostUpdates(updates: QueuedHostUpdate[]): void {
    const byColumns = new Map<string, QueuedHostUpdate[]>();
    for (const update of updates) {
      const key = Object.keys(update.columns).sort().join(",");
      const group = byColumns.get(key);
      if (group) group.push(update);
      else byColumns.set(key, [update]);
    }
    for (const [key, group] of byColumns) {
      const fields = key.split(",") as (keyof HostUpdate)[];
      for (const slice of chunks(group, ROWS_PER_STATEMENT)) {
        statement(this.db, hostUpdatesStatement(fields, slice.length)).run(...slice.flatMap((u) => [u.id, u.hostName, ...fields.map((field) => u.columns[field] ?? null)]));
      }
    }
  }

  /** Inserts the events with ids above every stored one (only the leader writes, so none is taken meanwhile). */
  private insertEvents(events: QueuedEvent[]): (QueuedEvent & { id: number })[] {
    if (events.length === 0) return [];
    const top = (statement(this.db, "SELECT coalesce(max(id), 0) AS top FROM deployment_events").get() as { top: number }).top;
    const numbered = events.map((event, i) => ({ ...event, id: Number(top) + 1 + i }));
    for (const slice of chunks(numbered, ROWS_PER_STATEMENT)) {
      statement(this.db, `INSERT INTO deployment_events (id, deployment_id, at, host_name, kind, message) VALUES ${slice.map(() => "(?, ?, ?, ?, ?, ?)").join(", ")}`)
        .run(...slice.flatMap((e) => [e.id, e.deploymentId, e.at, e.hostName, e.kind, e.message]));
    }
    return numbered;
  }
}
