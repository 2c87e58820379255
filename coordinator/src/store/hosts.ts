import { randomUUID } from "node:crypto";
import { COMMAND_MAC } from "@cutover/protocol";
import { statement, writeBehind, type Db } from "./database.js";
import { FencedOut } from "./postgres.js";

/** Resources as stored and served by the API (camelCase, plain numbers). */
export interface HostResources {
  cpuLoadPercent: number;
  memTotalBytes: number;
  memAvailableBytes: number;
  diskFreeBytes: number;
  diskTotalBytes: number;
  diskPath: string;
  loadAverage1m: number;
  loadAverage5m: number;
  loadAverage15m: number;
  cpuCount: number;
  sampledAt: number;
}

export interface AppInstanceReport {
  app: string;
  color: string;
  release: string;
  port: number;
  state: string;
  pid: number;
  live: boolean;
  rssBytes: number;
}

/** Why a host is kept out of deploys and front load balancers (`cutover hosts cordon`). */
export interface HostCordon {
  /** The API token's name that cordoned it. */
  by: string;
  reason: string;
  /** Milliseconds since the epoch. */
  at: number;
}

export interface HostRecord {
  id: string;
  name: string;
  publicKey: Buffer;
  address: string;
  hostname: string;
  /** Labels as enrolled or set by an admin: what app selectors match. Never what a Hello says on its own. */
  labels: Record<string, string>;
  /** Labels the agent presents that differ from `labels`, waiting for an admin (`cutover hosts accept`). */
  pendingLabels: Record<string, string> | null;
  /** An address the agent presents that differs from `address`, waiting for an admin. */
  pendingAddress: string | null;
  capabilities: string[];
  agentVersion: string;
  resources: HostResources | null;
  instances: AppInstanceReport[];
  enrolledAt: number;
  lastSeen: number | null;
  /** Set while the host is cordoned: deploys leave it out, load balancers drain it. */
  cordon: HostCordon | null;
}

interface HostRow {
  id: string;
  name: string;
  public_key: Buffer;
  address: string;
  hostname: string;
  labels: string;
  pending_labels: string | null;
  pending_address: string | null;
  capabilities: string;
  agent_version: string;
  resources: string | null;
  instances: string;
  enrolled_at: number;
  last_seen: number | null;
  cordon: string | null;
}

function fromRow(row: HostRow): HostRecord {
  return {
    id: row.id,
    name: row.name,
    publicKey: row.public_key,
    address: row.address,
    hostname: row.hostname,
    labels: JSON.parse(row.labels) as Record<string, string>,
    pendingLabels: row.pending_labels === null ? null : (JSON.parse(row.pending_labels) as Record<string, string>),
    pendingAddress: row.pending_address,
    capabilities: JSON.parse(row.capabilities) as string[],
    agentVersion: row.agent_version,
    resources: row.resources ? (JSON.parse(row.resources) as HostResources) : null,
    instances: JSON.parse(row.instances) as AppInstanceReport[],
    enrolledAt: row.enrolled_at,
    lastSeen: row.last_seen,
    cordon: row.cordon ? (JSON.parse(row.cordon) as HostCordon) : null,
  };
}

export interface HostIntroduction {
  address: string;
  hostname: string;
  labels: Record<string, string>;
  capabilities: string[];
  agentVersion: string;
}

/** Who a host is to the fleet: its labels and address, bound at enrollment, changed only by an admin. */
export interface HostIdentity {
  labels: Record<string, string>;
  address: string;
}

/** What an introduction asked to change that the record does not already say (undefined: nothing). */
export interface RequestedChange {
  labels?: Record<string, string>;
  address?: string;
}

export interface RetiredHost {
  name: string;
  removedAt: number;
  removedBy: string;
}

export function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => b[k] === a[k]);
}

/** Labels as the audit trail and logs show them: `k=v,k2=v2`, or "(none)". */
export function formatLabels(labels: Record<string, string>): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return pairs.length > 0 ? pairs.join(",") : "(none)";
}

function samePending(a: Record<string, string> | null, b: Record<string, string> | null): boolean {
  return a === null || b === null ? a === b : sameLabels(a, b);
}

function sortedLabels(labels: Record<string, string>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([x], [y]) => x.localeCompare(y))));
}

/** How long a heartbeat's figures wait in memory before they are written with the others that came meanwhile. */
export const REPORT_WRITE_DELAY_MS = 1_000;
/** Hosts written per statement (four parameters each, far below either engine's limit). */
const REPORTS_PER_STATEMENT = 250;

/** How far ahead of the wall clock (µs) a host's command sequences are reserved by one write. */
const SEQUENCE_WINDOW_US = 60 * 1_000_000;

/** What a heartbeat said, not yet written; a Hello without figures says only when the host was seen. */
interface UnwrittenReport {
  figures?: { resources: HostResources; instances: AppInstanceReport[] };
  at: number;
}

/** One statement that writes `count` hosts' figures: portable to SQLite (3.33+) and PostgreSQL. */
function reportsStatement(count: number): string {
  const values = Array.from({ length: count }, () => "(?, ?, ?, CAST(? AS BIGINT))").join(", ");
  return `WITH reported (id, resources, instances, last_seen) AS (VALUES ${values}) ` +
    "UPDATE hosts SET resources = coalesce(reported.resources, hosts.resources), instances = coalesce(reported.instances, hosts.instances), last_seen = reported.last_seen " +
    "FROM reported WHERE hosts.id = reported.id";
}

/**
 * The fleet inventory: every enrolled host and what it last reported. Heartbeat figures are
 * kept in memory and written for every host that reported in one statement a second later
 * (10,000 hosts heartbeating every 5 s are 2,000 reports a second: on PostgreSQL one write
 * each would take more than the whole second). Reads here see them at once; another
 * coordinator on the same store sees them up to REPORT_WRITE_DELAY_MS later.
 */
export class HostStore {
  private unwritten = new Map<string, UnwrittenReport>();
  private writeTimer: NodeJS.Timeout | undefined;
  /** Per host, the command sequences reserved in the store and the last one handed out. */
  private readonly sequenceWindows = new Map<string, { last: number; top: number }>();

  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  byPublicKey(publicKey: Uint8Array): HostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM hosts WHERE public_key = ?").get(Buffer.from(publicKey)) as HostRow | undefined;
    return row && this.latest(row);
  }

  byId(id: string): HostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM hosts WHERE id = ?").get(id) as HostRow | undefined;
    return row && this.latest(row);
  }

  byName(name: string): HostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM hosts WHERE name = ?").get(name) as HostRow | undefined;
    return row && this.latest(row);
  }

  list(): HostRecord[] {
    return (statement(this.db, "SELECT * FROM hosts ORDER BY name").all() as HostRow[]).map((row) => this.latest(row));
  }

  /** The stored record with the figures reported since, not yet written. */
  private latest(row: HostRow): HostRecord {
    return this.latestOf(fromRow(row));
  }

  private latestOf(host: HostRecord): HostRecord {
    const report = this.unwritten.get(host.id);
    if (!report) return host;
    return { ...host, ...report.figures, lastSeen: report.at };
  }

  enroll(name: string, publicKey: Uint8Array, identity: HostIdentity): HostRecord {
    const id = randomUUID();
    statement(this.db, "INSERT INTO hosts (id, name, public_key, labels, address, enrolled_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(id, name, Buffer.from(publicKey), sortedLabels(identity.labels), identity.address, this.now());
    return this.byName(name)!;
  }

  /**
   * Records what the agent says about itself in Hello. Its labels and address
   * are not taken: where they differ from the record they are kept as a
   * pending change for an admin. Returns the record as it now stands, and the
   * change when it is new (not the one already pending), so the caller audits
   * it once. A Hello that says what the record already says writes nothing
   * (a reconnect storm is thousands of them); the host is marked seen with
   * the heartbeat figures, within REPORT_WRITE_DELAY_MS.
   */
  introduce(host: HostRecord, intro: HostIntroduction): { host: HostRecord; change?: RequestedChange } {
    const pendingLabels = sameLabels(intro.labels, host.labels) ? null : intro.labels;
    // An agent that presents no (valid) address asks for no change of it.
    const pendingAddress = intro.address === "" || intro.address === host.address ? null : intro.address;
    const introduced: HostRecord = { ...host, hostname: intro.hostname, capabilities: intro.capabilities, agentVersion: intro.agentVersion, pendingLabels, pendingAddress };
    const unchanged = introduced.hostname === host.hostname && introduced.agentVersion === host.agentVersion &&
      JSON.stringify(introduced.capabilities) === JSON.stringify(host.capabilities) &&
      samePending(pendingLabels, host.pendingLabels) && pendingAddress === host.pendingAddress;
    if (!unchanged) {
      statement(this.db, "UPDATE hosts SET hostname = ?, capabilities = ?, agent_version = ?, pending_labels = ?, pending_address = ? WHERE id = ?")
        .run(intro.hostname, JSON.stringify(intro.capabilities), intro.agentVersion, pendingLabels && sortedLabels(pendingLabels), pendingAddress, host.id);
    }
    this.seen(host.id);
    const change: RequestedChange = {
      ...(pendingLabels && !(host.pendingLabels && sameLabels(pendingLabels, host.pendingLabels)) && { labels: pendingLabels }),
      ...(pendingAddress !== null && pendingAddress !== host.pendingAddress && { address: pendingAddress }),
    };
    return { host: this.latestOf(introduced), ...(Object.keys(change).length > 0 && { change }) };
  }

  /** An admin sets the host's labels (a pending labels change the agent asked for is settled by it). */
  setLabels(id: string, labels: Record<string, string>): void {
    statement(this.db, "UPDATE hosts SET labels = ?, pending_labels = NULL WHERE id = ?").run(sortedLabels(labels), id);
  }

  /** An admin accepts what the agent asked for; returns what changed. */
  acceptPending(id: string): RequestedChange {
    const host = this.byId(id);
    if (!host) throw new Error(`no host ${id}`);
    statement(this.db, "UPDATE hosts SET labels = coalesce(pending_labels, labels), address = coalesce(pending_address, address), pending_labels = NULL, pending_address = NULL WHERE id = ?")
      .run(id);
    return { ...(host.pendingLabels && { labels: host.pendingLabels }), ...(host.pendingAddress !== null && { address: host.pendingAddress }) };
  }

  /** Keeps the host out of deploys and load balancers; a host already cordoned keeps its first cordon (who, why, when). */
  cordon(id: string, by: string, reason: string): HostCordon {
    statement(this.db, "UPDATE hosts SET cordon = coalesce(cordon, ?) WHERE id = ?").run(JSON.stringify({ by, reason, at: this.now() } satisfies HostCordon), id);
    const host = this.byId(id);
    if (!host?.cordon) throw new Error(`no host ${id}`);
    return host.cordon;
  }

  uncordon(id: string): void {
    statement(this.db, "UPDATE hosts SET cordon = NULL WHERE id = ?").run(id);
  }

  /**
   * The next command sequence for the host: above every one it was sent, and
   * at least the wall clock in microseconds (agents enrolled when sequences
   * were clock readings keep accepting). The store holds the top of a window
   * reserved SEQUENCE_WINDOW_US ahead, so a restart or a new leader never
   * reuses one; a fan-out costs one write a window, not one a command.
   */
  nextSequence(id: string): number {
    const clock = Date.now() * 1000;
    let window = this.sequenceWindows.get(id);
    if (!window || Math.max(window.last + 1, clock) > window.top) {
      this.reserveSequences(id, clock);
      window = this.sequenceWindows.get(id);
      if (!window) throw new Error(`no host ${id}`);
    }
    return (window.last = Math.max(window.last + 1, clock));
  }

  /**
   * Reserves a window of sequences for the host and, in the same statement, for every host
   * whose agent takes signed commands (no COMMAND_MAC): the next fan-out to them writes nothing.
   */
  private reserveSequences(id: string, clock: number): void {
    const rows = statement(this.db, "UPDATE hosts SET command_sequence = (CASE WHEN command_sequence + 1 > ? THEN command_sequence + 1 ELSE ? END) + ? WHERE id = ? OR capabilities NOT LIKE ? RETURNING id, command_sequence")
      .all(clock, clock, SEQUENCE_WINDOW_US, id, `%"${COMMAND_MAC}"%`) as { id: string; command_sequence: number }[];
    for (const row of rows) this.sequenceWindows.set(row.id, { last: row.command_sequence - SEQUENCE_WINDOW_US - 1, top: row.command_sequence });
  }

  /** Removes the host from the fleet; its key is refused from then on. */
  remove(id: string, by: string): void {
    this.unwritten.delete(id);
    this.sequenceWindows.delete(id);
    this.db.transaction(() => {
      const host = this.byId(id);
      if (!host) return;
      statement(this.db, "INSERT INTO retired_hosts (public_key, name, removed_at, removed_by) VALUES (?, ?, ?, ?) ON CONFLICT (public_key) DO UPDATE SET name = excluded.name, removed_at = excluded.removed_at, removed_by = excluded.removed_by")
        .run(host.publicKey, host.name, this.now(), by);
      statement(this.db, "DELETE FROM hosts WHERE id = ?").run(id);
    })();
  }

  /** The removal of the host that held this key, if it was removed. */
  retired(publicKey: Uint8Array): RetiredHost | undefined {
    const row = statement(this.db, "SELECT name, removed_at, removed_by FROM retired_hosts WHERE public_key = ?").get(Buffer.from(publicKey)) as
      | { name: string; removed_at: number; removed_by: string }
      | undefined;
    return row && { name: row.name, removedAt: row.removed_at, removedBy: row.removed_by };
  }

  /** Records a heartbeat's figures: seen here at once, written with the others within REPORT_WRITE_DELAY_MS. */
  report(id: string, resources: HostResources, instances: AppInstanceReport[]): void {
    this.unwritten.set(id, { figures: { resources, instances }, at: this.now() });
    this.writeSoon();
  }

  /** Records that the host was seen (its figures unchanged), written with the reports. */
  seen(id: string): void {
    this.unwritten.set(id, { ...this.unwritten.get(id), at: this.now() });
    this.writeSoon();
  }

  private writeSoon(): void {
    if (this.writeTimer) return;
    this.writeTimer = setTimeout(() => this.writeReports(), REPORT_WRITE_DELAY_MS);
    this.writeTimer.unref();
  }

  /** Writes every report not yet written (on its timer, and at shutdown). */
  writeReports(): void {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    if (this.unwritten.size === 0 || !this.db.open) return;
    const reports = [...this.unwritten];
    this.unwritten = new Map();
    const statements = [];
    for (let start = 0; start < reports.length; start += REPORTS_PER_STATEMENT) {
      const slice = reports.slice(start, start + REPORTS_PER_STATEMENT);
      const params = slice.flatMap(([id, r]) => [id, r.figures ? JSON.stringify(r.figures.resources) : null, r.figures ? JSON.stringify(r.figures.instances) : null, r.at]);
      statements.push({ sql: reportsStatement(slice.length), params });
    }
    try {
      writeBehind(this.db, statements);
    } catch (error) {
      // A coordinator that no longer leads writes nothing; the leader's own sessions report to it.
      if (!(error instanceof FencedOut)) throw error;
    }
  }
}
