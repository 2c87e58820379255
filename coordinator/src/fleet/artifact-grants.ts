/** After a command's deadline, the host may still be finishing its download for this long. */
export const GRANT_GRACE_MS = 10 * 60 * 1000;

/**
 * Which host may download which artifact: a host is sent an artifact only
 * when it was sent a command that names it, until that command's deadline
 * (plus a grace). Another enrolled host — however it is labelled — gets
 * nothing. Kept in memory: a restarted coordinator re-asks its commands,
 * which grants again.
 */
export class ArtifactGrants {
  private readonly byHost = new Map<string, Map<string, number>>();

  constructor(private readonly now: () => number = Date.now) {}

  grant(hostId: string, sha256: string, deadlineUnixMs: number): void {
    let grants = this.byHost.get(hostId);
    if (!grants) this.byHost.set(hostId, (grants = new Map()));
    for (const [sha, until] of grants) if (until < this.now()) grants.delete(sha);
    grants.set(sha256, Math.max(grants.get(sha256) ?? 0, deadlineUnixMs + GRANT_GRACE_MS));
  }

  allows(hostId: string, sha256: string): boolean {
    return (this.byHost.get(hostId)?.get(sha256) ?? 0) >= this.now();
  }

  forget(hostId: string): void {
    this.byHost.delete(hostId);
  }
}
