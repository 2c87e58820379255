import express, { type Request, type Response, type Router } from "express";
import type { Logger } from "@cutover/log";
import { isValidName, isValidRelease, NAME_RULE, RELEASE_RULE } from "@cutover/protocol";
import { parseSpec, SpecError } from "@cutover/spec";
import type { Fleet } from "../fleet/fleet.js";
import type { Rollouts } from "../rollout/rollouts.js";
import type { AppStore } from "../store/apps.js";
import { ArtifactError, type ArtifactStore } from "../store/artifacts.js";
import { FINISHED_STATES, type DeploymentRecord, type DeploymentStore } from "../store/deployments.js";
import type { HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";

export interface DeploymentApiDeps {
  fleet: Fleet;
  hosts: HostStore;
  tokens: TokenStore;
  artifacts: ArtifactStore;
  deployments: DeploymentStore;
  apps: AppStore;
  rollouts: Rollouts;
  log: Logger;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** Between two comments on a quiet event stream. */
const EVENTS_KEEPALIVE_MS = 15_000;

/** How many of the latest analysis events `cutover status` shows. */
const ANALYSIS_LINES_SHOWN = 12;

/** A deployment with its per-host timeline, as the API and `--json` show it. */
export function deploymentView(deployments: DeploymentStore, deployment: DeploymentRecord) {
  const hosts = deployments.hosts(deployment.id);
  return {
    id: deployment.id,
    app: deployment.app,
    kind: deployment.kind,
    release: deployment.release,
    strategy: deployment.strategy,
    state: deployment.state,
    error: deployment.error,
    createdBy: deployment.createdBy,
    createdAt: new Date(deployment.createdAt).toISOString(),
    finishedAt: deployment.finishedAt ? new Date(deployment.finishedAt).toISOString() : null,
    durationMs: deployment.finishedAt ? deployment.finishedAt - deployment.createdAt : null,
    hosts: hosts.map((h) => ({
      name: h.hostName,
      batch: h.batch,
      outcome: h.state,
      liveColor: h.liveColor,
      release: h.release,
      previousRelease: h.previousRelease,
      error: h.error,
      switchMs: h.switchMs,
      bootMs: h.bootMs,
      totalMs: h.totalMs,
      handoverMs: h.handoverMs,
    })),
  };
}
export type DeploymentView = ReturnType<typeof deploymentView>;

export function appParam(request: Request): string {
  const app = String(request.params.app);
  if (!isValidName(app)) throw new ApiError(400, "ERR_BAD_REQUEST", `app name must be ${NAME_RULE}`);
  return app;
}

export function deploymentRoutes(deps: DeploymentApiDeps): Router {
  const { tokens, artifacts, deployments, apps, rollouts, fleet, hosts } = deps;
  const router = express.Router();

  router.get("/v1/artifacts/:sha256", requireRole(tokens, "read"), (request, response) => {
    const record = artifacts.get(String(request.params.sha256));
    if (!record) throw new ApiError(404, "ERR_ARTIFACT_UNKNOWN", "no such artifact");
    response.json(record);
  });

  router.put("/v1/artifacts/:sha256", requireRole(tokens, "deploy"), async (request, response) => {
    const sha256 = String(request.params.sha256);
    if (!SHA256.test(sha256)) throw new ApiError(400, "ERR_BAD_REQUEST", "artifact id must be a lower-case hex sha256");
    try {
      const record = await artifacts.put(sha256, request);
      deps.log.info("artifact stored", { sha256, size: record.size, by: request.token!.name });
      response.status(201).json(record);
    } catch (error) {
      if (error instanceof ArtifactError) throw new ApiError(error.code === "ERR_ARTIFACT_TOO_LARGE" ? 413 : 400, error.code, error.message);
      throw error;
    }
  });

  router.post("/v1/deployments", requireRole(tokens, "deploy"), (request, response) => {
    const body = (request.body ?? {}) as { spec?: unknown; specFile?: unknown; release?: unknown; artifactSha256?: unknown };
    if (typeof body.spec !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", '"spec" must be the app spec YAML text');
    if (typeof body.release !== "string" || !isValidRelease(body.release)) throw new ApiError(400, "ERR_BAD_REQUEST", `"release" must be ${RELEASE_RULE}`);
    const specFile = typeof body.specFile === "string" ? body.specFile : "app.yml";
    let artifact: { sha256: string; size: number } | undefined;
    if (body.artifactSha256 !== undefined) {
      if (typeof body.artifactSha256 !== "string" || !SHA256.test(body.artifactSha256)) throw new ApiError(400, "ERR_BAD_REQUEST", '"artifactSha256" must be a hex sha256');
      artifact = artifacts.get(body.artifactSha256);
      if (!artifact) throw new ApiError(400, "ERR_ARTIFACT_UNKNOWN", `artifact ${body.artifactSha256} was not uploaded; PUT it to /v1/artifacts/<sha256> first`);
    }
    let spec;
    try {
      // The artifact path names a file on the operator's machine; here only its upload matters.
      spec = parseSpec(body.spec, { file: specFile, baseDir: "/", exists: (path) => (!artifact ? null : /\.(tar\.gz|tgz)$/.test(path) ? "file" : "dir") });
    } catch (error) {
      if (error instanceof SpecError) throw new ApiError(400, "ERR_SPEC_INVALID", error.message);
      throw error;
    }
    if (spec.artifact && !artifact) throw new ApiError(400, "ERR_BAD_REQUEST", "the spec names an artifact: upload it and pass artifactSha256");
    const skipFailingHosts = (request.body as { skipFailingHosts?: unknown }).skipFailingHosts === true;
    const deployment = rollouts.startDeploy({ spec, specFile, release: body.release, artifact, createdBy: request.token!.name, skipFailingHosts });
    response.status(201).json(deploymentView(deployments, deployment));
  });

  // The resource preflight alone: what a deploy of this spec needs on each host and what the host reports.
  router.post("/v1/check", requireRole(tokens, "read"), (request, response) => {
    const body = (request.body ?? {}) as { spec?: unknown; specFile?: unknown; artifactBytes?: unknown };
    if (typeof body.spec !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", '"spec" must be the app spec YAML text');
    const specFile = typeof body.specFile === "string" ? body.specFile : "app.yml";
    let spec;
    try {
      spec = parseSpec(body.spec, { file: specFile, baseDir: "/", exists: (path) => (/\.(tar\.gz|tgz)$/.test(path) ? "file" : "dir") });
    } catch (error) {
      if (error instanceof SpecError) throw new ApiError(400, "ERR_SPEC_INVALID", error.message);
      throw error;
    }
    const hosts = rollouts.preflight(spec, typeof body.artifactBytes === "number" ? body.artifactBytes : 0);
    response.json({ app: spec.app, ok: hosts.length > 0 && hosts.every((h) => h.ok), hosts });
  });

  router.get("/v1/deployments/:id", requireRole(tokens, "read"), (request, response) => {
    const deployment = deployments.get(String(request.params.id));
    if (!deployment) throw new ApiError(404, "ERR_NOT_FOUND", "no such deployment");
    response.json(deploymentView(deployments, deployment));
  });

  // Server-sent events: every event of the deployment (after ?after=ID), then live ones, then `end` with the summary.
  router.get("/v1/deployments/:id/events", requireRole(tokens, "read"), (request: Request, response: Response) => {
    const id = String(request.params.id);
    if (!deployments.get(id)) throw new ApiError(404, "ERR_NOT_FOUND", "no such deployment");
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (type: string, data: unknown) => response.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    let finished = false;
    const finishIfDone = () => {
      const current = deployments.get(id)!;
      if (finished || !FINISHED_STATES.includes(current.state)) return;
      finished = true;
      unsubscribe();
      clearInterval(keepAlive);
      send("end", deploymentView(deployments, current));
      response.end();
    };
    // Read, then subscribe, in one turn: reading writes the queued events first (to the subscribers before this one), so none is missed or sent twice.
    for (const event of deployments.events(id, Number(request.query.after ?? 0))) send("progress", event);
    const unsubscribe = deployments.subscribe(id, (event) => {
      send("progress", event);
      if (event.kind === "deployment") setImmediate(finishIfDone);
    });
    // A paused deployment (a canary waiting for promotion) says nothing for as long as it waits: a
    // comment now and then keeps clients and proxies from timing the stream out (undici: 300 s).
    const keepAlive = setInterval(() => response.write(": keep-alive\n\n"), EVENTS_KEEPALIVE_MS);
    finishIfDone();
    request.on("close", () => {
      unsubscribe();
      clearInterval(keepAlive);
    });
  });

  router.get("/v1/apps", requireRole(tokens, "read"), (_request, response) => {
    response.json(apps.names());
  });

  router.get("/v1/apps/:app/status", requireRole(tokens, "read"), (request, response) => {
    const app = appParam(request);
    const spec = apps.get(app);
    if (!spec) throw new ApiError(404, "ERR_APP_UNKNOWN", `${app} is unknown: never deployed, or removed (\`cutover history ${app}\` keeps its deployments)`);
    const active = deployments.active(app);
    const rows = hosts
      .list()
      .filter((h) => h.instances.some((i) => i.app === app))
      .map((h) => {
        const instances = h.instances.filter((i) => i.app === app);
        const live = instances.find((i) => i.live);
        return {
          name: h.name,
          state: fleet.liveness(h.id),
          liveColor: live?.color ?? null,
          release: live?.release ?? null,
          health: live?.state ?? "none",
          instances,
        };
      });
    // The measurements of the running deployment's analysis, else of the last one's.
    const judged = active ?? deployments.history(app, 1)[0];
    const analysis = judged ? deployments.events(judged.id).filter((e) => e.kind === "analysis").slice(-ANALYSIS_LINES_SHOWN).map((e) => e.message) : [];
    response.json({ app, deployment: active ? deploymentView(deployments, active) : null, hosts: rows, analysis });
  });

  router.get("/v1/apps/:app/history", requireRole(tokens, "read"), (request, response) => {
    const app = appParam(request);
    response.json(deployments.history(app, Number(request.query.limit ?? 20)).map((d) => deploymentView(deployments, d)));
  });

  for (const action of ["pause", "resume", "promote", "abort"] as const) {
    router.post(`/v1/apps/:app/${action}`, requireRole(tokens, "deploy"), (request, response) => {
      const deployment = rollouts.control(appParam(request), action, request.token!.name);
      response.json(deploymentView(deployments, deployment));
    });
  }

  router.post("/v1/apps/:app/rollback", requireRole(tokens, "deploy"), (request, response) => {
    const app = appParam(request);
    const spec = apps.get(app);
    if (!spec) throw new ApiError(404, "ERR_APP_UNKNOWN", `${app} has never been deployed`);
    const deployment = rollouts.startRollback(app, spec, request.token!.name);
    response.status(201).json(deploymentView(deployments, deployment));
  });

  return router;
}
