import type { Db } from "../store/database.js";
import type { HostIdentity, HostRecord, HostStore } from "../store/hosts.js";
import type { EnrollmentCheck, TokenStore } from "../store/tokens.js";

export type EnrollOutcome = { ok: true; host: HostRecord; boundByToken: boolean } | Extract<EnrollmentCheck, { ok: false }>;

/**
 * First contact of an agent: check the one-time token, record the host and
 * spend the token in one transaction, so a crash or a race never leaves a
 * host without a spent token or a token spent twice.
 *
 * Labels and address the token binds are the host's; the agent's own (from
 * Hello) are taken only where the token binds none — an admin who wants them
 * fixed says so with `cutover token create --labels … --address …`.
 */
export function enrollHost(db: Db, hosts: HostStore, tokens: TokenStore, name: string, publicKey: Uint8Array, token: string, presented: HostIdentity): EnrollOutcome {
  return db.transaction((): EnrollOutcome => {
    const check = tokens.checkEnrollmentToken(token);
    if (!check.ok) return check;
    const identity: HostIdentity = { labels: check.labels ?? presented.labels, address: check.address ?? presented.address };
    const host = hosts.enroll(name, publicKey, identity);
    if (!tokens.spendEnrollmentToken(check.id, host.id)) throw new Error("enrollment token spent concurrently");
    return { ok: true, host, boundByToken: check.labels !== undefined || check.address !== undefined };
  })();
}
