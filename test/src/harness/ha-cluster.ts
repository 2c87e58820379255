import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { startPostgres, type PostgresCluster } from "@cutover/testkit";
import { CoordinatorProcess, startAgent, type AgentProcess, type TestContext } from "./fleet.js";
import { tempDir } from "./processes.js";

/** The keys every member of one store must share (docs/ha.md), copied from the first member's data dir. */
const SHARED_KEY_FILES = ["coordinator-key.pem", "secrets.key"];

/** Several `cutover server --store postgres://…` processes on one throwaway PostgreSQL, and agents that know them all. */
export interface HaCluster {
  postgres: PostgresCluster;
  /** The database the members share. */
  storeUrl: string;
  members: CoordinatorProcess[];
  /** Every member's URL, comma-joined: what agents get as `--coordinator`. */
  agentCoordinators: { url: string };
  agents: AgentProcess[];
  addresses: string[];
  dir: string;
  /** The member that leads now, by asking each live one (`GET /v1/server/status`). */
  leader(): Promise<CoordinatorProcess>;
  /** Resolves with the leader once one other than `not` leads (the epoch raised past `pastEpoch`). */
  newLeader(not: CoordinatorProcess, pastEpoch: number): Promise<{ leader: CoordinatorProcess; epoch: number }>;
}

interface StatusBody {
  self: string;
  role: string;
  leader: string | null;
  epoch: number;
}

export async function serverStatus(member: CoordinatorProcess): Promise<StatusBody | undefined> {
  try {
    const response = await fetch(`${member.url}/v1/server/status`, { headers: { authorization: `Bearer ${member.adminToken}` }, signal: AbortSignal.timeout(5000) });
    return response.ok ? ((await response.json()) as StatusBody) : undefined;
  } catch {
    return undefined; // killed, paused or starting
  }
}

/**
 * `members` coordinators on one store and `hosts` agents (web-1.. on 127.A.B.11..), all online.
 * The first member starts alone and leads; the others start with its keys and follow.
 */
export async function startHaCluster(t: TestContext & { teardown(fn: () => void): void; log(...values: unknown[]): void }, options: { members: number; hosts: number }): Promise<HaCluster> {
  const postgres = await startPostgres();
  t.teardown(() => postgres.stop());
  const storeUrl = postgres.createDatabase();
  const args = ["--store", storeUrl, "--heartbeat-interval", "1s"];
  const members: CoordinatorProcess[] = [];
  for (let i = 0; i < options.members; i++) {
    const dataDir = join(tempDir(t, "cutover-member-"), "data");
    if (i > 0) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      for (const file of SHARED_KEY_FILES) copyFileSync(join(members[0]!.dataDir, file), join(dataDir, file));
    }
    const member = new CoordinatorProcess(dataDir, args);
    t.teardown(() => member.process?.kill("SIGKILL"));
    await member.start();
    if (i > 0) member.adminToken = members[0]!.adminToken;
    members.push(member);
  }
  const agentCoordinators = { url: members.map((m) => m.url).join(",") };
  const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const addresses = Array.from({ length: options.hosts }, (_, i) => `${base}.${11 + i}`);
  const agents = await Promise.all(
    addresses.map(async (address, i) =>
      startAgent(t, agentCoordinators, { name: `web-${i + 1}`, address, labels: "role=geoip", token: await members[0]!.enrollmentToken({ labels: "role=geoip", address }) }),
    ),
  );
  await Promise.all(agents.map((a) => a.online()));
  const leader = async () => {
    for (;;) {
      for (const member of members) {
        const status = await serverStatus(member);
        if (status?.role === "leader" && status.leader === status.self) return member;
      }
      await new Promise((resolve) => setTimeout(resolve, 200)); // no leader this instant (a takeover in progress): ask again
    }
  };
  const newLeader = async (not: CoordinatorProcess, pastEpoch: number) => {
    for (;;) {
      for (const member of members) {
        if (member === not) continue;
        const status = await serverStatus(member);
        if (status?.role === "leader" && status.epoch > pastEpoch) return { leader: member, epoch: status.epoch };
      }
      await new Promise((resolve) => setTimeout(resolve, 200)); // the lease has not expired yet: ask again
    }
  };
  return { postgres, storeUrl, members, agentCoordinators, agents, addresses, dir: tempDir(t, "cutover-ha-"), leader, newLeader };
}
