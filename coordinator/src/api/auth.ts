import express, { type Request, type RequestHandler } from "express";
import { roleAllows, type ApiTokenRecord, type Role, type TokenStore } from "../store/tokens.js";
import { ApiError } from "./errors.js";

declare module "express-serve-static-core" {
  interface Request {
    token?: ApiTokenRecord;
  }
}

/** The largest JSON request body read (only ever from a caller whose token has the role the route needs). */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
const jsonBody = express.json({ limit: MAX_REQUEST_BODY_BYTES });

/**
 * Express middleware for an API route: the request must carry
 * `Authorization: Bearer <API token>` with at least `role`, and only then is
 * its JSON body read. A caller without that right never has its body parsed,
 * so it cannot make the coordinator buffer, parse or store what it sent.
 */
export function requireRole(tokens: TokenStore, role: Role): RequestHandler {
  return (request, response, next) => {
    authorize(tokens, role, request);
    jsonBody(request, response, next);
  };
}

/** Sets `request.token`, or throws the ApiError (401, 403) the caller gets. */
function authorize(tokens: TokenStore, role: Role, request: Request): void {
  const header = request.headers.authorization ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) {
    throw new ApiError(401, "ERR_UNAUTHENTICATED", "no API token: send `Authorization: Bearer <token>` (CLI: set CUTOVER_TOKEN or --token)");
  }
  const check = tokens.checkApiToken(match[1]!);
  if (!check.ok && check.reason !== "unknown") request.token = check.record; // the audit trail names whose token it was
  if (!check.ok && check.reason === "expired") {
    throw new ApiError(401, "ERR_TOKEN_EXPIRED", `the API token "${check.record.name}" expired at ${new Date(check.at).toISOString()}: ask an admin for a new one (\`cutover token create --api\`)`);
  }
  // A revoked token is told no more than an unknown one: whoever holds it now learns nothing from it.
  if (!check.ok) {
    throw new ApiError(401, "ERR_UNAUTHENTICATED", "check CUTOVER_TOKEN or --token (an admin's `cutover token list` shows every token): the API token is unknown or revoked");
  }
  request.token = check.record; // known even when refused below: the audit trail names who tried
  if (!roleAllows(check.record.role, role)) {
    throw new ApiError(403, "ERR_FORBIDDEN", `this needs a token with role "${role}"; yours ("${check.record.name}") has "${check.record.role}"`);
  }
}
