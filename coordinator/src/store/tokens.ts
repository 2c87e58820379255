import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { statement, type Db } from "./database.js";

export type Role = "read" | "deploy" | "admin";
export const ROLES: readonly Role[] = ["read", "deploy", "admin"];
const ROLE_RANK: Record<Role, number> = { read: 1, deploy: 2, admin: 3 };

/** True when a token with `held` may do what needs `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLE_RANK[held] >= ROLE_RANK[needed];
}

const API_PREFIX = "cta_";
const ENROLL_PREFIX = "cte_";

function hash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function newSecret(prefix: string): string {
  return prefix + randomBytes(24).toString("base64url");
}

export interface ApiTokenRecord {
  id: string;
  name: string;
  role: Role;
}

export type EnrollmentCheck =
  | { ok: true; id: string; labels?: Record<string, string>; address?: string }
  | { ok: false; reason: "unknown" | "used" | "expired" | "revoked" };

/** API and enrollment tokens. Only sha256 hashes are stored; the secret is shown once. */
export class TokenStore {
  constructor(private readonly db: Db, private readonly now: () => number = Date.now) {}

  createApiToken(name: string, role: Role): { token: string; record: ApiTokenRecord } {
    const token = newSecret(API_PREFIX);
    const record = { id: randomUUID(), name, role };
    statement(this.db, "INSERT INTO api_tokens (id, name, role, hash, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(record.id, name, role, hash(token), this.now());
    return { token, record };
  }

  countApiTokens(): number {
    return (statement(this.db, "SELECT count(*) AS n FROM api_tokens").get() as { n: number }).n;
  }

  /** The record for a presented API token, or undefined when unknown or revoked. */
  findApiToken(token: string): ApiTokenRecord | undefined {
    if (!token.startsWith(API_PREFIX)) return undefined;
    const row = statement(this.db, "SELECT id, name, role, hash FROM api_tokens WHERE hash = ? AND revoked_at IS NULL")
      .get(hash(token)) as (ApiTokenRecord & { hash: string }) | undefined;
    // The lookup is by hash already; the constant-time compare guards against a future change to prefix lookups.
    if (!row || !timingSafeEqual(Buffer.from(row.hash), Buffer.from(hash(token)))) return undefined;
    return { id: row.id, name: row.name, role: row.role };
  }

  createEnrollmentToken(ttlMs: number): { token: string; id: string; expiresAt: number } {
    const token = newSecret(ENROLL_PREFIX);
    const id = randomUUID();
    const created = this.now();
    const expiresAt = created + ttlMs;
    statement(this.db, "INSERT INTO enrollment_tokens (id, hash, created_at, expires_at) VALUES (?, ?, ?, ?)")
      .run(id, hash(token), created, expiresAt);
    return { token, id, expiresAt };
  }

  checkEnrollmentToken(token: string): EnrollmentCheck {
    const row = statement(this.db, "SELECT id, expires_at, used_at FROM enrollment_tokens WHERE hash = ?")
      .get(hash(token)) as { id: string; expires_at: number; used_at: number | null } | undefined;
    if (!row) return { ok: false, reason: "unknown" };
    if (row.used_at !== null) return { ok: false, reason: "used" };
    if (row.expires_at <= this.now()) return { ok: false, reason: "expired" };
    return { ok: true, id: row.id };
  }

  /** Marks the token spent; false when another enrollment spent it first. */
  spendEnrollmentToken(id: string, hostId: string): boolean {
    const result = statement(this.db, "UPDATE enrollment_tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL")
      .run(this.now(), hostId, id);
    return result.changes === 1;
  }
}
