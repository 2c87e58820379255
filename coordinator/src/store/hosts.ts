import { randomUUID } from "node:crypto";
import { statement, type Db } from "./database.js";

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

export interface HostRecord {
  id: string;
  name: string;
  publicKey: Buffer;
  address: string;
  hostname: string;
  labels: Record<string, string>;
  capabilities: string[];
  agentVersion: string;
  resources: HostResources | null;
  instances: AppInstanceReport[];
  enrolledAt: number;
  lastSeen: number | null;
}

interface HostRow {
  id: string;
  name: string;
  public_key: Buffer;
  address: string;
  hostname: string;
  labels: string;
  capabilities: string;
  agent_version: string;
  resources: string | null;
  instances: string;
  enrolled_at: number;
  last_seen: number | null;
}

function fromRow(row: HostRow): HostRecord {
  return {
    id: row.id,
    name: row.name,
    publicKey: row.public_key,
    address: row.address,
    hostname: row.hostname,
    labels: JSON.parse(row.labels) as Record<string, string>,
    capabilities: JSON.parse(row.capabilities) as string[],
    agentVersion: row.agent_version,
    resources: row.resources ? (JSON.parse(row.resources) as HostResources) : null,
    instances: JSON.parse(row.instances) as AppInstanceReport[],
    enrolledAt: row.enrolled_at,
    lastSeen: row.last_seen,
  };
}

export interface HostIntroduction {
  address: string;
  hostname: string;
  labels: Record<string, string>;
  capabilities: string[];
  agentVersion: string;
}

/** The fleet inventory: every enrolled host and what it last reported. */
export class HostStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  byPublicKey(publicKey: Uint8Array): HostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM hosts WHERE public_key = ?").get(Buffer.from(publicKey)) as HostRow | undefined;
    return row && fromRow(row);
  }

  byName(name: string): HostRecord | undefined {
    const row = statement(this.db, "SELECT * FROM hosts WHERE name = ?").get(name) as HostRow | undefined;
    return row && fromRow(row);
  }

  list(): HostRecord[] {
    return (statement(this.db, "SELECT * FROM hosts ORDER BY name").all() as HostRow[]).map(fromRow);
  }

  enroll(name: string, publicKey: Uint8Array): HostRecord {
    const id = randomUUID();
    statement(this.db, "INSERT INTO hosts (id, name, public_key, enrolled_at) VALUES (?, ?, ?, ?)")
      .run(id, name, Buffer.from(publicKey), this.now());
    return this.byName(name)!;
  }

  /** Records what the agent says about itself in Hello. */
  introduce(id: string, intro: HostIntroduction): void {
    statement(this.db, "UPDATE hosts SET address = ?, hostname = ?, labels = ?, capabilities = ?, agent_version = ?, last_seen = ? WHERE id = ?",
      )
      .run(intro.address, intro.hostname, JSON.stringify(intro.labels), JSON.stringify(intro.capabilities), intro.agentVersion, this.now(), id);
  }

  /** Records a heartbeat's figures. */
  report(id: string, resources: HostResources, instances: AppInstanceReport[]): void {
    statement(this.db, "UPDATE hosts SET resources = ?, instances = ?, last_seen = ? WHERE id = ?")
      .run(JSON.stringify(resources), JSON.stringify(instances), this.now(), id);
  }
}
