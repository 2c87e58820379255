import type { Db } from "../store/database.js";
import type { HostRecord, HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";

export type EnrollOutcome = { ok: true; host: HostRecord } | { ok: false; reason: "unknown" | "used" | "expired" };

/**
 * First contact of an agent: check the one-time token, record the host and
 * spend the token in one transaction, so a crash or a race never leaves a
 * host without a spent token or a token spent twice.
 */
export function enrollHost(db: Db, hosts: HostStore, tokens: TokenStore, name: string, publicKey: Uint8Array, token: string): EnrollOutcome {
  return db.transaction((): EnrollOutcome => {
    const check = tokens.checkEnrollmentToken(token);
    if (!check.ok) return check;
    const host = hosts.enroll(name, publicKey);
    if (!tokens.spendEnrollmentToken(check.id, host.id)) throw new Error("enrollment token spent concurrently");
    return { ok: true, host };
  }).immediate();
}
