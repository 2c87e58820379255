import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import type { ServerStatus } from "../cluster/server-status.js";
import type { CoordinatorMetrics } from "../metrics/registry.js";
import type { AuditStore } from "../store/audit.js";
import type { InstallerSource } from "../installer/agent-bundle.js";
import { agentRoutes } from "./agents.js";
import { appRoutes } from "./apps.js";
import { auditTrail, remoteAddress } from "./audit-trail.js";
import { MAX_REQUEST_BODY_BYTES, requireRole } from "./auth.js";
import { deploymentRoutes, type DeploymentApiDeps } from "./deployments.js";
import { ApiError, type ApiErrorBody } from "./errors.js";
import { hostRoutes } from "./hosts.js";
import { installerRoutes } from "./installer.js";
import { lockRoutes, type LockApiDeps } from "./locks.js";
import { logRoutes } from "./logs.js";
import { planRoutes } from "./plan.js";
import type { RefusedCalls } from "./refused-calls.js";
import { releaseRoutes } from "./releases.js";
import { secretRoutes, type SecretApiDeps } from "./secrets.js";
import { tokenRoutes } from "./tokens.js";
import { uiRoutes } from "./ui.js";
import { whoamiRoutes } from "./whoami.js";

export interface ApiDeps extends DeploymentApiDeps, LockApiDeps, SecretApiDeps {
  version: string;
  audit: AuditStore;
  refusals: RefusedCalls;
  metrics: CoordinatorMetrics;
  /** install.sh and the agent bundle, served without a token (public code only). */
  installer: InstallerSource;
  server: {
    /** Who leads, the epoch and the members (GET /v1/server/status). */
    status(): ServerStatus;
    /** On a shared store: sends a follower's calls to the leader (forward-to-leader.ts). */
    forward?: RequestHandler;
  };
}

/**
 * The coordinator's HTTP API, under /v1. No body is read before the caller's
 * token and role are checked (`requireRole` parses it after), so a caller
 * without a token can make the coordinator store nothing but a bounded,
 * rate-limited audit row.
 */
export function createApi(deps: ApiDeps): express.Express {
  const { fleet, tokens, log } = deps;
  const app = express();
  app.disable("x-powered-by");
  // Before the audit trail: a follower writes nothing, the leader audits the call it answers.
  if (deps.server.forward) app.use(deps.server.forward);
  app.use(auditTrail(deps.audit));

  app.get("/v1/server/status", requireRole(tokens, "read"), (_request, response) => {
    response.json(deps.server.status());
  });

  app.get("/v1/health", (_request, response) => {
    response.json({ ok: true, version: deps.version, agentsOnline: fleet.onlineCount() });
  });

  app.use(uiRoutes());
  app.use(whoamiRoutes(deps));
  app.use(installerRoutes(deps));
  app.use(tokenRoutes(deps));
  app.use(hostRoutes(deps));
  app.use(agentRoutes(deps));
  app.use(planRoutes(deps));
  app.use(deploymentRoutes(deps));
  app.use(lockRoutes(deps));
  app.use(appRoutes(deps));
  app.use(secretRoutes(deps));
  app.use(releaseRoutes(deps));
  app.use(logRoutes(deps));

  // Prometheus text format; scrape with a read token (Prometheus `authorization: { credentials: ... }`).
  app.get("/metrics", requireRole(tokens, "read"), async (_request, response) => {
    response.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  app.get("/v1/audit", requireRole(tokens, "admin"), (request, response) => {
    deps.refusals.flush();
    response.json(deps.audit.list({ limit: Number(request.query.limit ?? 100) || 100 }));
  });

  // Which routes exist is for token holders only: a caller without one is refused (and counted) like any other.
  app.use(requireRole(tokens, "read"), (_request: Request, _response: Response) => {
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
    if (status === 401 || status === 403) {
      const address = remoteAddress(request);
      const verdict = deps.refusals.refuse(address, status);
      response.locals.refusal = verdict;
      if (verdict === "throttle") {
        const seconds = deps.refusals.retryAfterSeconds(address);
        status = 429;
        body = { error: { code: "ERR_RATE_LIMITED", message: `too many refused calls from ${address}: check the token, and try again in ${seconds}s` } };
        response.setHeader("retry-after", String(seconds));
      }
    }
    response.status(status).json(body);
  });
  return app;
}
