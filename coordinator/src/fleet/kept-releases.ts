import { isValidName, isValidRelease, MAX_KEPT_RELEASES, type cutover } from "@cutover/protocol";

/** A release tree one host keeps for one app (KeptRelease in resources.proto). */
export interface KeptRelease {
  release: string;
  /** The artifact it was unpacked from; "" when the agent could not read its record. */
  sha256: string;
  unpackedAt: number;
}

/** What one host last said it keeps: releases per app, newest first, and when it said so. */
export interface KeptReport {
  reportedAt: number;
  byApp: Map<string, KeptRelease[]>;
}

/**
 * The release trees each host reported in its latest heartbeat, in memory (a
 * restarted coordinator has them again after one heartbeat). Only agents with
 * the `releases.kept` capability report them; for the others nothing is known.
 */
export class KeptReleases {
  readonly #byHost = new Map<string, KeptReport>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A heartbeat's list replaces the host's earlier one; entries with names no release has are dropped. */
  report(host: string, wire: cutover.v1.KeptRelease.$Properties[] | null | undefined): void {
    const byApp = new Map<string, KeptRelease[]>();
    for (const k of (wire ?? []).slice(0, MAX_KEPT_RELEASES)) {
      if (!k.app || !isValidName(k.app) || !k.release || !isValidRelease(k.release)) continue;
      const list = byApp.get(k.app) ?? [];
      list.push({ release: k.release, sha256: /^[0-9a-f]{64}$/.test(k.sha256 ?? "") ? k.sha256! : "", unpackedAt: Number(k.unpackedAtUnixMs ?? 0) });
      byApp.set(k.app, list);
    }
    this.#byHost.set(host, { reportedAt: this.now(), byApp });
  }

  forget(host: string): void {
    this.#byHost.delete(host);
  }

  /** What `host` keeps of `app` as of its last report; undefined when it has not reported since this coordinator started. */
  of(host: string, app: string): { reportedAt: number; releases: KeptRelease[] } | undefined {
    const report = this.#byHost.get(host);
    return report && { reportedAt: report.reportedAt, releases: report.byApp.get(app) ?? [] };
  }
}
