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

/** Deployments, their per-host timelines and events; every step is written here before it is acted on. */
export class DeploymentStore {
  private readonly listeners = new Map<string, Set<(event: DeploymentEvent) => void>>();
  /** Called when a deployment reaches a finished state (metrics). */
  onFinished?: (deployment: DeploymentRecord) => void;

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  create(input: { app: string; kind: DeploymentKind; release: string; strategy: string; spec: unknown; artifactSha256?: string; createdBy: string; hosts: { name: string; batch: number }[] }): DeploymentRecord {
    const id = randomUUID();
    const at = this.now();
    this.db.transaction(() => {
      // seq orders deployments created in the same millisecond (SQLite's rowid did; PostgreSQL has none).
      statement(this.db, "INSERT INTO deployments (id, app, kind, release, strategy, spec, artifact_sha256, state, created_by, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM deployments))")
        .run(id, input.app, input.kind, input.release, input.strategy, JSON.stringify(input.spec), input.artifactSha256 ?? null, input.createdBy, at);
      const insertHost = statement(this.db, "INSERT INTO deployment_hosts (deployment_id, host_name, batch, state) VALUES (?, ?, ?, 'pending')");
      for (const host of input.hosts) insertHost.run(id, host.name, host.batch);
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
    return (statement(this.db, "SELECT * FROM deployment_hosts WHERE deployment_id = ? ORDER BY batch, host_name").all(id) as Record<string, unknown>[]).map(hostFromRow);
  }

  /** One host's row (the hot path of a rollout: one indexed read, not the whole deployment). */
  host(id: string, hostName: string): DeploymentHostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM deployment_hosts WHERE deployment_id = ? AND host_name = ?").get(id, hostName) as Record<string, unknown> | undefined;
    return row && hostFromRow(row);
  }

  updateHost(id: string, hostName: string, update: Partial<Omit<DeploymentHostRecord, "hostName" | "batch">>): void {
    const columns: Record<string, string> = {
      state: "state", error: "error", liveColor: "live_color", release: "release", previousRelease: "previous_release",
      switchMs: "switch_ms", bootMs: "boot_ms", totalMs: "total_ms", handoverMs: "handover_ms", commandId: "command_id", startedAt: "started_at", finishedAt: "finished_at",
    };
    const entries = Object.entries(update).filter(([key]) => key in columns);
    if (entries.length === 0) return;
    const sql = `UPDATE deployment_hosts SET ${entries.map(([key]) => `${columns[key]} = ?`).join(", ")} WHERE deployment_id = ? AND host_name = ?`;
    statement(this.db, sql).run(...entries.map(([, value]) => value ?? null), id, hostName);
  }

  addEvent(id: string, hostName: string | null, kind: string, message: string): DeploymentEvent {
    const at = this.now();
    const row = statement(this.db, "INSERT INTO deployment_events (deployment_id, at, host_name, kind, message) VALUES (?, ?, ?, ?, ?) RETURNING id").get(id, at, hostName, kind, message) as { id: number };
    const event = { id: Number(row.id), at, hostName, kind, message };
    for (const listener of this.listeners.get(id) ?? []) listener(event);
    return event;
  }

  events(id: string, afterId = 0): DeploymentEvent[] {
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
}
