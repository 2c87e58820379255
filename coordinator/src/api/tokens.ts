import express, { type Request, type Router } from "express";
import type { Logger } from "@cutover/log";
import { isValidLabel, isValidName, LABEL_RULE, NAME_RULE } from "@cutover/protocol";
import { parseDuration } from "@cutover/spec";
import type { HostStore } from "../store/hosts.js";
import { ROLES, type EnrollmentBinding, type Role, type TokenStore, type TokenView } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";
import { isHostAddress } from "../fleet/host-address.js";

export const DEFAULT_ENROLLMENT_TTL_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const MAX_ENROLLMENT_TTL_MS = 30 * DAY_MS;
const MAX_API_TOKEN_LIFETIME_MS = 3650 * DAY_MS;

/** A lifetime: whole days ("30d") or a duration ("12h", "90m", "1h30m"). */
export function parseLifetime(text: string): number {
  const days = /^(\d+)d$/.exec(text);
  if (days) return Number(days[1]) * DAY_MS;
  try {
    return parseDuration(text);
  } catch {
    throw new RangeError(`"${text}" is not a lifetime: days like "30d" or a duration like "12h" or "90m"`);
  }
}

function lifetime(field: string, text: string, maxMs: number): number {
  let ms: number;
  try {
    ms = parseLifetime(text);
  } catch (error) {
    throw new ApiError(400, "ERR_BAD_REQUEST", `${field}: ${(error as Error).message}`);
  }
  if (ms <= 0 || ms > maxMs) throw new ApiError(400, "ERR_BAD_REQUEST", `${field} must be more than 0 and at most ${maxMs / DAY_MS} days, got "${text}"`);
  return ms;
}

/** `k=v,k2=v2` (as the agent's --labels takes them), each checked against the label rule. */
export function parseLabelList(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new ApiError(400, "ERR_BAD_REQUEST", `label "${pair}" must be key=value`);
    const [key, value] = [pair.slice(0, at), pair.slice(at + 1)];
    if (!isValidLabel(key, value)) throw new ApiError(400, "ERR_BAD_REQUEST", `label ${key}=${value} is invalid: ${LABEL_RULE}`);
    labels[key] = value;
  }
  return labels;
}


function bodyString(request: Request, field: string): string | undefined {
  const value = (request.body as Record<string, unknown> | undefined)?.[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", `"${field}" must be a string`);
  return value;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** A token as the API shows it: times in ISO 8601, the host that spent an enrollment token by name. */
function tokenJson(token: TokenView, hosts: HostStore) {
  return {
    ...token,
    createdAt: iso(token.createdAt)!,
    expiresAt: iso(token.expiresAt),
    usedAt: iso(token.usedAt),
    usedBy: token.usedBy === null ? null : (hosts.byId(token.usedBy)?.name ?? token.usedBy),
    revokedAt: iso(token.revokedAt),
  };
}
export type TokenJson = ReturnType<typeof tokenJson>;

function describe(token: TokenView): string {
  return token.kind === "api" ? `api token "${token.name}" (${token.role})` : "enrollment token";
}

/** Tokens, admin only: create (enrollment: bound identity and TTL; API: role and optional expiry), list, revoke. */
export function tokenRoutes(deps: { tokens: TokenStore; hosts: HostStore; log: Logger }): Router {
  const { tokens, hosts, log } = deps;
  const router = express.Router();

  router.post("/v1/tokens/enrollment", requireRole(tokens, "admin"), (request, response) => {
    const ttlText = bodyString(request, "ttl");
    const ttlMs = ttlText === undefined ? DEFAULT_ENROLLMENT_TTL_MS : lifetime("ttl", ttlText, MAX_ENROLLMENT_TTL_MS);
    const labelsText = bodyString(request, "labels");
    const address = bodyString(request, "address");
    if (address !== undefined && !isHostAddress(address)) throw new ApiError(400, "ERR_BAD_REQUEST", `address "${address}" is neither an IPv4/IPv6 address nor a host name`);
    const binding: EnrollmentBinding = { ...(labelsText !== undefined && { labels: parseLabelList(labelsText) }), ...(address !== undefined && { address }) };
    const created = tokens.createEnrollmentToken(ttlMs, binding);
    response.locals.auditDetail = `id=${created.id}`;
    log.info("enrollment token created", { by: request.token!.name, id: created.id, expiresAt: iso(created.expiresAt) });
    response.status(201).json({ token: created.token, id: created.id, expiresAt: iso(created.expiresAt), labels: binding.labels ?? null, address: binding.address ?? null });
  });

  router.post("/v1/tokens/api", requireRole(tokens, "admin"), (request, response) => {
    const role = bodyString(request, "role") ?? "read";
    const name = bodyString(request, "name") ?? `${role}-token`;
    const expiresText = bodyString(request, "expires");
    if (!ROLES.includes(role as Role)) throw new ApiError(400, "ERR_BAD_REQUEST", `role must be one of ${ROLES.join(", ")}`);
    if (!isValidName(name)) throw new ApiError(400, "ERR_BAD_REQUEST", `name must be ${NAME_RULE}`);
    const lifetimeMs = expiresText === undefined ? undefined : lifetime("expires", expiresText, MAX_API_TOKEN_LIFETIME_MS);
    const created = tokens.createApiToken(name, role as Role, lifetimeMs);
    response.locals.auditDetail = `id=${created.record.id}`;
    log.info("api token created", { by: request.token!.name, id: created.record.id, name, role, expiresAt: iso(created.expiresAt) ?? "never" });
    response.status(201).json({ token: created.token, id: created.record.id, name, role, expiresAt: iso(created.expiresAt) });
  });

  router.get("/v1/tokens", requireRole(tokens, "admin"), (_request, response) => {
    response.json(tokens.list().map((token) => tokenJson(token, hosts)));
  });

  router.post("/v1/tokens/:id/revoke", requireRole(tokens, "admin"), (request, response) => {
    const id = String(request.params.id);
    const outcome = tokens.revoke(id, request.token!.name);
    if (!outcome.ok) {
      if (outcome.reason === "unknown") throw new ApiError(404, "ERR_NOT_FOUND", `no token has id "${id}": \`cutover token list\` shows every token`);
      const token = tokenJson(outcome.token, hosts);
      if (outcome.reason === "already-revoked") throw new ApiError(409, "ERR_ALREADY_REVOKED", `${describe(outcome.token)} ${id} was already revoked at ${token.revokedAt} by ${token.revokedBy}`);
      if (outcome.reason === "used") {
        throw new ApiError(409, "ERR_TOKEN_USED", `enrollment token ${id} was spent by host ${token.usedBy} at ${token.usedAt}: revoking it changes nothing (the host signs in with its key); \`cutover hosts remove ${token.usedBy}\` shuts it out`);
      }
      throw new ApiError(409, "ERR_LAST_ADMIN_TOKEN", `${describe(outcome.token)} is the last admin token that works: create another (\`cutover token create --api --role admin --name NAME\`) before revoking it`);
    }
    response.locals.auditDetail = `revoked ${describe(outcome.token)}`;
    log.warn("token revoked", { by: request.token!.name, id, kind: outcome.token.kind, name: outcome.token.name ?? undefined });
    response.json(tokenJson(outcome.token, hosts));
  });

  return router;
}
