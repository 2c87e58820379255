import type { Logger } from "@cutover/log";
import type { Leadership } from "../fleet/leadership.js";
import type { LeaseHolder, LeaseTable, MemberRecord } from "../store/lease.js";
import type { PostgresDb } from "../store/postgres.js";

export interface LeaseTimers {
  /** How long a lease lasts past its last renewal (the database's clock). */
  leaseTtlMs: number;
  /** How often each member renews (the leader) or tries to take over (a follower), and announces itself. */
  renewEveryMs: number;
}

/** Renewed five times per lease: a leader survives four lost renewals in a row. */
export const DEFAULT_LEASE_TIMERS: LeaseTimers = { leaseTtlMs: 10_000, renewEveryMs: 2_000 };

/** This member, as the others see it. */
export interface MemberIdentity {
  id: string;
  apiUrl: string;
  agentUrl: string;
  version: string;
  /** Fingerprint of the signing and secrets keys: every member must hold the same. */
  keysId: string;
}

export type MemberRole = "follower" | "leader" | "deposed";

/**
 *   follower ──takes the expired lease over (epoch + 1)──▶ leader ──finds another epoch──▶ deposed
 *
 * A leader acts (isLeader) only until `renewedAt + ttl - margin` on its own monotonic clock,
 * which keeps running while the process is paused (SIGSTOP): a paused leader that wakes up
 * past that time sends nothing, and its writes are fenced by the store until it learns it was
 * deposed, then it stops for good (the server exits; its supervisor restarts it as a follower).
 */
export class ClusterLeadership implements Leadership {
  private role: MemberRole = "follower";
  private leadEpoch = 0;
  /** performance.now() past which this leader stops acting unless it renewed. */
  private actsUntil = 0;
  private holder: LeaseHolder | undefined;
  private known: MemberRecord[] = [];
  private timer: NodeJS.Timeout | undefined;
  private triedOnce = false;
  private readonly startedAt = Date.now();

  constructor(
    private readonly db: PostgresDb,
    private readonly lease: LeaseTable,
    private readonly self: MemberIdentity,
    private readonly timers: LeaseTimers,
    private readonly log: Logger,
    private readonly on: { lead(epoch: number): void; deposed(holder: LeaseHolder | undefined): void },
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.timers.renewEveryMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  isLeader(): boolean {
    return this.role === "leader" && performance.now() < this.actsUntil;
  }

  epoch(): number {
    return this.role === "follower" ? (this.holder?.epoch ?? 0) : this.leadEpoch;
  }

  get currentRole(): MemberRole {
    return this.role;
  }

  /** The lease as this member last read it. */
  get leaseHolder(): LeaseHolder | undefined {
    return this.holder;
  }

  /** The database's clock (epoch ms), which the lease's expiry is on. */
  databaseNow(): number {
    return this.lease.now();
  }

  /** Live members, the leader first. */
  memberRecords(): MemberRecord[] {
    const leader = this.holder?.holder;
    return [...this.known].sort((a, b) => Number(b.id === leader) - Number(a.id === leader));
  }

  members(): string[] {
    return this.memberRecords().map((m) => m.agentUrl);
  }

  leaderAgentUrl(): string | undefined {
    return this.leader()?.agentUrl;
  }

  /** The leader's record when another member leads. */
  leader(): MemberRecord | undefined {
    const holder = this.holder?.holder;
    return holder && holder !== this.self.id ? this.known.find((m) => m.id === holder) : undefined;
  }

  /** Once per renewEveryMs: announce, renew or try to take over, and read who leads. */
  private tick(): void {
    if (this.role === "deposed") return;
    const started = performance.now();
    try {
      this.lease.announce(this.self, this.startedAt);
      if (this.role === "leader") this.renew(started);
      else this.tryTakeOver(started);
      this.holder = this.lease.current();
      this.known = this.lease.members(3 * this.timers.leaseTtlMs);
    } catch (error) {
      // The store is unreachable: a leader keeps acting until its lease would have run out, then stops.
      this.log.warn("cannot reach the store to renew or read the lease", { role: this.role, error: error instanceof Error ? error.message : String(error) });
    }
  }

  private renew(started: number): void {
    if (this.lease.renew(this.leadEpoch)) {
      this.actsUntil = started + this.timers.leaseTtlMs - this.margin();
      return;
    }
    this.role = "deposed";
    this.db.writeEpoch = undefined;
    this.stop();
    const holder = this.lease.current();
    this.log.error("lost the lease: another coordinator leads now", { epoch: this.leadEpoch, holder: holder?.holder, newEpoch: holder?.epoch });
    this.on.deposed(holder);
  }

  private tryTakeOver(started: number): void {
    // The first attempt of this process may take over from an earlier process on its own address.
    const epoch = this.lease.takeOver(!this.triedOnce);
    this.triedOnce = true;
    if (epoch === undefined) return;
    this.role = "leader";
    this.leadEpoch = epoch;
    this.db.writeEpoch = epoch;
    this.actsUntil = started + this.timers.leaseTtlMs - this.margin();
    this.log.info("took the lease: this coordinator leads", { epoch, member: this.self.id });
    this.on.lead(epoch);
  }

  /** Room for the members' clocks running at slightly different rates. */
  private margin(): number {
    return Math.min(this.timers.leaseTtlMs / 4, 1000 + this.timers.leaseTtlMs / 10);
  }
}
