// The shapes of the API answers the dashboard reads (see coordinator/src/api/*): kept here, not
// imported, because the dashboard is built for a browser and the API's modules are Node's.

export type Role = "read" | "deploy" | "admin";
export type HostState = "online" | "late" | "unreachable";

export interface Whoami {
  name: string;
  role: Role;
}

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
}

export interface AppInstance {
  app: string;
  color: string;
  release: string;
  port: number;
  state: string;
  pid: number;
  live: boolean;
}

export interface Host {
  name: string;
  address: string;
  hostname: string;
  labels: Record<string, string>;
  state: HostState;
  heartbeatOverdueMs: number;
  lastSeen: string | null;
  agentVersion: string;
  resources: HostResources | null;
  instances: AppInstance[];
  cordoned: { by: string; reason: string; at: string } | null;
}

export type DeploymentState = "running" | "paused" | "rolling_back" | "succeeded" | "failed" | "rolled_back";
export const FINISHED: readonly DeploymentState[] = ["succeeded", "failed", "rolled_back"];

export interface DeploymentHost {
  name: string;
  batch: number;
  outcome: string;
  liveColor: string | null;
  release: string | null;
  previousRelease: string | null;
  error: string | null;
  totalMs: number | null;
}

export interface Deployment {
  id: string;
  app: string;
  kind: "deploy" | "rollback";
  release: string;
  strategy: string;
  state: DeploymentState;
  error: string | null;
  createdBy: string;
  createdAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  hosts: DeploymentHost[];
}

export interface DeploymentEvent {
  id: number;
  at: number;
  hostName: string | null;
  kind: string;
  message: string;
}

export interface AppStatus {
  app: string;
  deployment: Deployment | null;
  hosts: { name: string; state: HostState; liveColor: string | null; release: string | null; health: string }[];
  analysis: string[];
}

export interface AppReleases {
  app: string;
  hosts: { name: string; releases: { release: string; live: boolean; unpackedAt: string }[] }[];
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  detail: string;
}
