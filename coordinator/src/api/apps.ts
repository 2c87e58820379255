import express, { type Router } from "express";
import type { Rollouts } from "../rollout/rollouts.js";
import { removalRefusal, removalTargets, removeFromHosts, type AppRemovalView } from "../rollout/remove-app.js";
import { requireRole } from "./auth.js";
import { appParam, type DeploymentApiDeps } from "./deployments.js";
import { ApiError } from "./errors.js";

/** Stop timeout assumed for an app the coordinator has no spec of (only hosts still report it). */
const UNKNOWN_APP_STOP_TIMEOUT_MS = 30_000;

/**
 * `cutover apps remove`: an admin's (it takes a service away from its users, which no
 * deploy token can otherwise do). Refused while the app is locked or a deployment of it
 * runs, or while a host that has it cannot be cleaned; deploys of it are refused while it
 * is being removed. Its deployment history and audit rows are kept.
 */
export function appRoutes(deps: DeploymentApiDeps & { rollouts: Rollouts }): Router {
  const { tokens, apps, hosts, fleet, rollouts, log } = deps;
  const router = express.Router();

  router.post("/v1/apps/:app/remove", requireRole(tokens, "admin"), async (request, response) => {
    const app = appParam(request);
    const spec = apps.get(app);
    const targets = removalTargets(hosts.list(), app, spec, apps.lbState(app)?.backends.map((b) => b.host));
    if (!spec && targets.length === 0) throw new ApiError(404, "ERR_APP_UNKNOWN", `${app} is not a known app and no host runs it (\`cutover apps\` lists them)`);
    const view = await rollouts.whileRemoving(app, async (): Promise<AppRemovalView> => {
      const refusal = removalRefusal(app, targets, (host) => fleet.reachable(host.id));
      if (refusal) throw refusal;
      const results = await removeFromHosts(deps, app, targets, spec?.run.stopTimeoutMs ?? UNKNOWN_APP_STOP_TIMEOUT_MS);
      const removed = results.every((r) => r.ok);
      if (removed) apps.remove(app);
      return { app, removed, hosts: results };
    });
    const failed = view.hosts.filter((h) => !h.ok).map((h) => h.name);
    response.locals.auditDetail = view.removed ? `removed from ${view.hosts.map((h) => h.name).join(", ") || "no host"}` : `not removed: failed on ${failed.join(", ")}`;
    log.warn(view.removed ? "app removed" : "app removal incomplete", { app, by: request.token!.name, failed: failed.join(",") });
    response.json(view);
  });

  return router;
}
