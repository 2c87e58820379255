import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { formatEnrollmentToken } from "@cutover/protocol";
import { statement, type Db } from "./database.js";

export type Role = "read" | "deploy" | "admin";
export const ROLES: readonly Role[] = ["read", "deploy", "admin"];
const ROLE_RANK: Record<Role, number> = { read: 1, deploy: 2, admin: 3 };

/** True when a token with `held` may do what needs `needed`. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLE_RANK[held] >= ROLE_RANK[needed];
}

const API_PREFIX = "cta_";

function hash(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function newSecret(): string {
  return randomBytes(24).toString("base64url");
}

export interface ApiTokenRecord {
  id: string;
  name: string;
  role: Role;
}

/** A presented API token: usable, or why not (a revoked or expired one still names whose it was, for the audit trail). */
export type ApiTokenCheck =
  | { ok: true; record: ApiTokenRecord }
  | { ok: false; reason: "unknown" }
  | { ok: false; reason: "revoked"; record: ApiTokenRecord }
  | { ok: false; reason: "expired"; record: ApiTokenRecord; at: number };

export type EnrollmentCheck =
  | { ok: true; id: string; labels: Record<string, string> | undefined; address: string | undefined }
  | { ok: false; reason: "unknown" | "used" | "expired" | "revoked" };

/** What an enrollment token fixes about the host that enrolls with it (absent: the host's agent says). */
export interface EnrollmentBinding {
  labels?: Record<string, string>;
  address?: string;
}

/** Where a token is in its life; only `active` ones are accepted. */
export type TokenState = "active" | "expired" | "used" | "revoked";

/** A token as `cutover token list` shows it: never its secret nor its hash. */
export interface TokenView {
  id: string;
  kind: "api" | "enrollment";
  /** API tokens only. */
  name: string | null;
  role: Role | null;
  state: TokenState;
  createdAt: number;
  /** null: an API token that never expires. */
  expiresAt: number | null;
  /** Enrollment tokens only: when and by which host id it was spent. */
  usedAt: number | null;
  usedBy: string | null;
  revokedAt: number | null;
  revokedBy: string | null;
  /** Enrollment tokens only: the identity they bind. */
  labels: Record<string, string> | null;
  address: string | null;
}

export type RevokeOutcome =
  | { ok: true; token: TokenView }
  | { ok: false; reason: "unknown" }
  | { ok: false; reason: "already-revoked" | "used" | "last-admin"; token: TokenView };

interface ApiTokenRow {
  id: string;
  name: string;
  role: Role;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  revoked_by: string | null;
}

interface EnrollmentTokenRow {
  id: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  used_by: string | null;
  labels: string | null;
  address: string | null;
  revoked_at: number | null;
  revoked_by: string | null;
}

export interface TokenStoreOptions {
  /** The coordinator key's id, named in every enrollment token (an agent enrolling pins only that key). */
  coordinatorKeyId: string;
  now?: () => number;
}

/** API and enrollment tokens. Only sha256 hashes are stored; the secret is shown once. */
export class TokenStore {
  private readonly coordinatorKeyId: string;
  private readonly now: () => number;

  constructor(private readonly db: Db, options: TokenStoreOptions) {
    this.coordinatorKeyId = options.coordinatorKeyId;
    this.now = options.now ?? Date.now;
  }

  /** `lifetimeMs` absent: the token is valid until revoked. */
  createApiToken(name: string, role: Role, lifetimeMs?: number): { token: string; record: ApiTokenRecord; expiresAt: number | null } {
    const token = API_PREFIX + newSecret();
    const record = { id: randomUUID(), name, role };
    const created = this.now();
    const expiresAt = lifetimeMs === undefined ? null : created + lifetimeMs;
    statement(this.db, "INSERT INTO api_tokens (id, name, role, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
      .run(record.id, name, role, hash(token), created, expiresAt);
    return { token, record, expiresAt };
  }

  countApiTokens(): number {
    return (statement(this.db, "SELECT count(*) AS n FROM api_tokens").get() as { n: number }).n;
  }

  checkApiToken(token: string): ApiTokenCheck {
    if (!token.startsWith(API_PREFIX)) return { ok: false, reason: "unknown" };
    const row = statement(this.db, "SELECT id, name, role, hash, expires_at, revoked_at FROM api_tokens WHERE hash = ?")
      .get(hash(token)) as (ApiTokenRecord & { hash: string; expires_at: number | null; revoked_at: number | null }) | undefined;
    // The lookup is by hash already; the constant-time compare guards against a future change to prefix lookups.
    if (!row || !timingSafeEqual(Buffer.from(row.hash), Buffer.from(hash(token)))) return { ok: false, reason: "unknown" };
    const record = { id: row.id, name: row.name, role: row.role };
    if (row.revoked_at !== null) return { ok: false, reason: "revoked", record };
    if (row.expires_at !== null && row.expires_at <= this.now()) return { ok: false, reason: "expired", record, at: row.expires_at };
    return { ok: true, record };
  }

  createEnrollmentToken(ttlMs: number, binding: EnrollmentBinding = {}): { token: string; id: string; expiresAt: number } {
    const token = formatEnrollmentToken(newSecret(), this.coordinatorKeyId);
    const id = randomUUID();
    const created = this.now();
    const expiresAt = created + ttlMs;
    statement(this.db, "INSERT INTO enrollment_tokens (id, hash, created_at, expires_at, labels, address) VALUES (?, ?, ?, ?, ?, ?)")
      .run(id, hash(token), created, expiresAt, binding.labels ? JSON.stringify(binding.labels) : null, binding.address ?? null);
    return { token, id, expiresAt };
  }

  checkEnrollmentToken(token: string): EnrollmentCheck {
    const row = statement(this.db, "SELECT * FROM enrollment_tokens WHERE hash = ?").get(hash(token)) as EnrollmentTokenRow | undefined;
    if (!row) return { ok: false, reason: "unknown" };
    if (row.revoked_at !== null) return { ok: false, reason: "revoked" };
    if (row.used_at !== null) return { ok: false, reason: "used" };
    if (row.expires_at <= this.now()) return { ok: false, reason: "expired" };
    return {
      ok: true,
      id: row.id,
      labels: row.labels === null ? undefined : (JSON.parse(row.labels) as Record<string, string>),
      address: row.address ?? undefined,
    };
  }

  /** Marks the token spent; false when another enrollment spent it (or an admin revoked it) first. */
  spendEnrollmentToken(id: string, hostId: string): boolean {
    const result = statement(this.db, "UPDATE enrollment_tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL")
      .run(this.now(), hostId, id);
    return result.changes === 1;
  }

  /** Every token of both kinds, newest first. */
  list(): TokenView[] {
    const api = (statement(this.db, "SELECT * FROM api_tokens").all() as ApiTokenRow[]).map((row) => this.apiView(row));
    const enrollment = (statement(this.db, "SELECT * FROM enrollment_tokens").all() as EnrollmentTokenRow[]).map((row) => this.enrollmentView(row));
    return [...api, ...enrollment].sort((a, b) => b.createdAt - a.createdAt || a.id.localeCompare(b.id));
  }

  /**
   * Revokes the token with `id`, of either kind. Refused for a spent enrollment
   * token (revoking it changes nothing: the host it enrolled signs in with its
   * key) and for the last usable admin token (nobody could create another).
   */
  revoke(id: string, by: string): RevokeOutcome {
    return this.db.transaction((): RevokeOutcome => {
      const token = this.find(id);
      if (!token) return { ok: false, reason: "unknown" };
      if (token.state === "revoked") return { ok: false, reason: "already-revoked", token };
      if (token.state === "used") return { ok: false, reason: "used", token };
      if (token.role === "admin" && token.state === "active" && this.otherUsableAdmins(id) === 0) return { ok: false, reason: "last-admin", token };
      const table = token.kind === "api" ? "api_tokens" : "enrollment_tokens";
      statement(this.db, `UPDATE ${table} SET revoked_at = ?, revoked_by = ? WHERE id = ?`).run(this.now(), by, id);
      return { ok: true, token: this.find(id)! };
    })();
  }

  private find(id: string): TokenView | undefined {
    const api = statement(this.db, "SELECT * FROM api_tokens WHERE id = ?").get(id) as ApiTokenRow | undefined;
    if (api) return this.apiView(api);
    const enrollment = statement(this.db, "SELECT * FROM enrollment_tokens WHERE id = ?").get(id) as EnrollmentTokenRow | undefined;
    return enrollment && this.enrollmentView(enrollment);
  }

  private otherUsableAdmins(id: string): number {
    const row = statement(this.db, "SELECT count(*) AS n FROM api_tokens WHERE role = 'admin' AND id != ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)")
      .get(id, this.now()) as { n: number };
    return row.n;
  }

  private apiView(row: ApiTokenRow): TokenView {
    const expired = row.expires_at !== null && row.expires_at <= this.now();
    return {
      id: row.id,
      kind: "api",
      name: row.name,
      role: row.role,
      state: row.revoked_at !== null ? "revoked" : expired ? "expired" : "active",
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      usedAt: null,
      usedBy: null,
      revokedAt: row.revoked_at,
      revokedBy: row.revoked_by,
      labels: null,
      address: null,
    };
  }

  private enrollmentView(row: EnrollmentTokenRow): TokenView {
    const state: TokenState = row.revoked_at !== null ? "revoked" : row.used_at !== null ? "used" : row.expires_at <= this.now() ? "expired" : "active";
    return {
      id: row.id,
      kind: "enrollment",
      name: null,
      role: null,
      state,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      usedAt: row.used_at,
      usedBy: row.used_by,
      revokedAt: row.revoked_at,
      revokedBy: row.revoked_by,
      labels: row.labels === null ? null : (JSON.parse(row.labels) as Record<string, string>),
      address: row.address,
    };
  }
}
