import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "@cutover/log";
import { parseDuration } from "@cutover/spec";
import { isValidName, NAME_RULE } from "@cutover/protocol";
import type { Fleet } from "../fleet/fleet.js";
import type { HostStore } from "../store/hosts.js";
import { ROLES, type Role, type TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError, type ApiErrorBody } from "./errors.js";
import { hostRoutes } from "./hosts.js";
import { deploymentRoutes, type DeploymentApiDeps } from "./deployments.js";
import { logRoutes } from "./logs.js";
import type { AuditStore } from "../store/audit.js";
import type { CoordinatorMetrics } from "../metrics/registry.js";

export const MAX_REQUEST_BODY_BYTES = 1024 * 1024;
export const DEFAULT_ENROLLMENT_TTL_MS = 60 * 60 * 1000;
const MAX_ENROLLMENT_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface ApiDeps extends DeploymentApiDeps {
  version: string;
  audit: AuditStore;
  metrics: CoordinatorMetrics;
}

function bodyString(request: Request, field: string): string | undefined {
  const value = (request.body as Record<string, unknown> | undefined)?.[field];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", `"${field}" must be a string`);
  return value;
}

/** What an audited call acted on, read from its path and body. */
export function auditTarget(path: string, body: Record<string, unknown>): string {
  const [, , collection, id] = path.split("/");
  if ((collection === "apps" || collection === "artifacts") && id) return id;
  if (collection === "tokens") return id === "api" ? `api token ${typeof body.name === "string" ? body.name : ""}`.trim() : "enrollment token";
  if (collection === "hosts" && id && id !== "ping") return id;
  if (collection === "hosts") return Array.isArray(body.hosts) ? body.hosts.join(",") : "every online host";
  if (collection === "deployments" && typeof body.spec === "string") return /^app:\s*(\S+)/m.exec(body.spec)?.[1] ?? "";
  return "";
}

/** The coordinator's HTTP API, under /v1. */
export function createApi(deps: ApiDeps): express.Express {
  const { fleet, hosts, tokens, log } = deps;
  const app = express();
  app.disable("x-powered-by");
  // Every call that could change something is audited once it is answered, refused ones included.
  app.use((request, response, next) => {
    if (request.method === "GET" || request.method === "HEAD") return next();
    response.on("finish", () => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const target = auditTarget(request.path, body);
      const fields = ["release", "role", "name", "ttl"].filter((k) => typeof body[k] === "string").map((k) => `${k}=${String(body[k])}`);
      // What a handler says it changed (e.g. a host's labels before and after).
      if (typeof response.locals.auditDetail === "string") fields.push(response.locals.auditDetail);
      const detail = fields.join(" ");
      deps.audit.record({
        actor: request.token?.name ?? "(no valid token)",
        action: `${request.method} ${request.path}`,
        target,
        outcome: String(response.statusCode),
        detail,
      });
    });
    next();
  });
  app.use(express.json({ limit: MAX_REQUEST_BODY_BYTES }));

  app.get("/v1/health", (_request, response) => {
    response.json({ ok: true, version: deps.version, agentsOnline: fleet.onlineCount() });
  });

  app.post("/v1/tokens/enrollment", requireRole(tokens, "admin"), (request, response) => {
    const ttlText = bodyString(request, "ttl");
    let ttlMs = DEFAULT_ENROLLMENT_TTL_MS;
    if (ttlText !== undefined) {
      try {
        ttlMs = parseDuration(ttlText);
      } catch (error) {
        throw new ApiError(400, "ERR_BAD_REQUEST", `ttl: ${(error as Error).message}`);
      }
      if (ttlMs <= 0 || ttlMs > MAX_ENROLLMENT_TTL_MS) throw new ApiError(400, "ERR_BAD_REQUEST", "ttl must be between 1ms and 30 days");
    }
    const created = tokens.createEnrollmentToken(ttlMs);
    log.info("enrollment token created", { by: request.token!.name, id: created.id, expiresAt: new Date(created.expiresAt).toISOString() });
    response.status(201).json({ token: created.token, id: created.id, expiresAt: new Date(created.expiresAt).toISOString() });
  });

  app.post("/v1/tokens/api", requireRole(tokens, "admin"), (request, response) => {
    const role = bodyString(request, "role") ?? "read";
    const name = bodyString(request, "name") ?? `${role}-token`;
    if (!ROLES.includes(role as Role)) throw new ApiError(400, "ERR_BAD_REQUEST", `role must be one of ${ROLES.join(", ")}`);
    if (!isValidName(name)) throw new ApiError(400, "ERR_BAD_REQUEST", `name must be ${NAME_RULE}`);
    const created = tokens.createApiToken(name, role as Role);
    log.info("api token created", { by: request.token!.name, name, role });
    response.status(201).json({ token: created.token, id: created.record.id, name, role });
  });

  app.use(hostRoutes(deps));
  app.use(deploymentRoutes(deps));
  app.use(logRoutes(deps));

  // Prometheus text format; scrape with a read token (Prometheus `authorization: { credentials: ... }`).
  app.get("/metrics", requireRole(tokens, "read"), async (_request, response) => {
    response.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.get("/v1/audit", requireRole(tokens, "admin"), (request, response) => {
    response.json(deps.audit.list({ limit: Number(request.query.limit ?? 100) || 100 }));
  });

  app.use((_request, _response) => {
    throw new ApiError(404, "ERR_NOT_FOUND", "no such API route");
  });

  app.use((error: unknown, request: Request, response: Response, _next: NextFunction) => {
    let status = 500;
    let body: ApiErrorBody = { error: { code: "ERR_INTERNAL", message: "internal error; see the coordinator log" } };
    if (error instanceof ApiError) {
      status = error.status;
      body = { error: { code: error.code, message: error.message } };
    } else if (typeof error === "object" && error !== null && "type" in error && (error as { type: string }).type === "entity.too.large") {
      status = 413;
      body = { error: { code: "ERR_BODY_TOO_LARGE", message: `request body over ${MAX_REQUEST_BODY_BYTES} bytes` } };
    } else if (typeof error === "object" && error !== null && "type" in error && (error as { type: string }).type === "entity.parse.failed") {
      status = 400;
      body = { error: { code: "ERR_BAD_REQUEST", message: "request body is not valid JSON" } };
    } else {
      log.error("api error", { method: request.method, path: request.path, error: (error as Error)?.stack ?? String(error) });
    }
    response.status(status).json(body);
  });
  return app;
}
