import type { NextFunction, Request, Response } from "express";
import { roleAllows, type ApiTokenRecord, type Role, type TokenStore } from "../store/tokens.js";
import { ApiError } from "./errors.js";

declare module "express-serve-static-core" {
  interface Request {
    token?: ApiTokenRecord;
  }
}

/** Express middleware: the request must carry `Authorization: Bearer <API token>` with at least `role`. */
export function requireRole(tokens: TokenStore, role: Role) {
  return (request: Request, _response: Response, next: NextFunction): void => {
    const header = request.headers.authorization ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      throw new ApiError(401, "ERR_UNAUTHENTICATED", "no API token: send `Authorization: Bearer <token>` (CLI: set CUTOVER_TOKEN or --token)");
    }
    const record = tokens.findApiToken(match[1]!);
    if (!record) throw new ApiError(401, "ERR_UNAUTHENTICATED", "the API token is unknown or revoked");
    request.token = record; // known even when refused below: the audit trail names who tried
    if (!roleAllows(record.role, role)) {
      throw new ApiError(403, "ERR_FORBIDDEN", `this needs a token with role "${role}"; yours ("${record.name}") has "${record.role}"`);
    }
    next();
  };
}
