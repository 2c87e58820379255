import express, { type Request, type Router } from "express";
import { REPORTS_KEPT_RELEASES } from "@cutover/protocol";
import type { HostLiveness } from "../fleet/fleet.js";
import { hostReleases, rollbackHosts } from "../rollout/rollback-to.js";
import type { HostRecord } from "../store/hosts.js";
import { requireRole } from "./auth.js";
import { appParam, deploymentView, type DeploymentApiDeps } from "./deployments.js";
import { ApiError } from "./errors.js";

/**
 * Whether a host's release list can be read: "reported" (its last heartbeat's),
 * "awaiting" (its agent reports them, but has not since this coordinator
 * started), "unsupported" (its agent is too old to report them).
 */
export type KeptReporting = "reported" | "awaiting" | "unsupported";

/** One host's kept releases of an app, as `cutover releases --json` prints them. */
export interface HostReleasesView {
  name: string;
  state: HostLiveness;
  /** The release the host's proxy serves (its last heartbeat), null when none. */
  live: string | null;
  reporting: KeptReporting;
  /** When the host last reported what it keeps (ISO 8601), null unless "reported". */
  reportedAt: string | null;
  /** Newest first. */
  releases: { release: string; live: boolean; sha256: string; unpackedAt: string }[];
}

export interface ReleasesView {
  app: string;
  hosts: HostReleasesView[];
}

/** `GET /v1/apps/:app/releases` (read) and `POST /v1/apps/:app/releases/:release/rollback` (deploy: `cutover rollback APP --to RELEASE`). */
export function releaseRoutes(deps: DeploymentApiDeps): Router {
  const { tokens, apps, deployments, rollouts, artifacts, fleet } = deps;
  const router = express.Router();

  const specOf = (app: string) => {
    const spec = apps.get(app);
    if (!spec) throw new ApiError(404, "ERR_APP_UNKNOWN", `${app} has never been deployed`);
    return spec;
  };

  // What one host keeps of the app: its report as the rollback reads it (hostReleases), and when it was made.
  const hostView = (host: HostRecord, app: string): HostReleasesView => {
    const { live, kept } = hostReleases(deps, host, app);
    const reported = kept && fleet.kept.of(host.name, app);
    return {
      name: host.name,
      state: fleet.liveness(host.id),
      live,
      reporting: reported ? "reported" : host.capabilities.includes(REPORTS_KEPT_RELEASES) ? "awaiting" : "unsupported",
      reportedAt: reported ? new Date(reported.reportedAt).toISOString() : null,
      releases: (kept ?? []).map((k) => ({ release: k.release, live: k.release === live, sha256: k.sha256, unpackedAt: new Date(k.unpackedAt).toISOString() })),
    };
  };

  router.get("/v1/apps/:app/releases", requireRole(tokens, "read"), (request, response) => {
    const app = appParam(request);
    const view: ReleasesView = { app, hosts: rollbackHosts(deps, app, specOf(app)).map((host) => hostView(host, app)) };
    response.json(view);
  });

  router.post("/v1/apps/:app/releases/:release/rollback", requireRole(tokens, "deploy"), (request: Request, response) => {
    const app = appParam(request);
    const deployment = rollouts.startRollback(app, specOf(app), request.token!.name, { release: String(request.params.release), artifact: (sha256) => artifacts.get(sha256) });
    response.status(201).json(deploymentView(deployments, deployment));
  });

  return router;
}
