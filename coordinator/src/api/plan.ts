import express, { type Router } from "express";
import { isValidRelease, RELEASE_RULE } from "@cutover/protocol";
import { parseSpec, SpecError, type AppSpec } from "@cutover/spec";
import type { HostCheck } from "../rollout/preflight.js";
import { hostPlans, planOutcome, type DeployShape, type HostPlan, type PlanOutcome } from "../rollout/plan.js";
import type { Rollouts } from "../rollout/rollouts.js";
import { specDiff, type FieldChange } from "../rollout/spec-diff.js";
import type { AppStore } from "../store/apps.js";
import type { ArtifactStore } from "../store/artifacts.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";

export interface PlanApiDeps {
  tokens: TokenStore;
  artifacts: ArtifactStore;
  apps: AppStore;
  rollouts: Rollouts;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** What `POST /v1/deployments/plan` answers and `cutover deploy --plan --json` prints (README, "CLI"). */
export interface DeployPlanView {
  app: string;
  release: string;
  /** The strategy's shape as the deploy would walk it (`first-behind-lb`: the app's first release behind its load balancer). */
  strategy: DeployShape;
  /** `no-change` (exit 0), `change` (exit 2), `refused`: a deploy started now would be refused, see `refusals` (exit 1). */
  outcome: PlanOutcome;
  /** The host names of each batch, in order. */
  batches: string[][];
  /** Every host the deploy reaches, in order. */
  hosts: HostPlan[];
  /** Hosts the spec selects that the deploy leaves out (cordoned, or `--skip-failing-hosts` and a failed preflight). */
  leftOut: string[];
  /** The parsed spec's fields that differ from the app's last deployed spec; null when the app was never deployed. */
  specChanges: FieldChange[] | null;
  /** The resource preflight, as `cutover check` shows it. */
  preflight: { ok: boolean; hosts: HostCheck[] };
  /** The artifact the spec names (null: none); `uploaded`: the coordinator has it already. */
  artifact: { sha256: string; bytes: number; uploaded: boolean } | null;
  /** Why a deploy started now would be refused (the first is what it would answer), as the API's error bodies. */
  refusals: { code: string; message: string }[];
}

/**
 * `POST /v1/deployments/plan`: what `POST /v1/deployments` with the same body
 * would do, computed by the same selection (`Rollouts.selectForDeploy`), with
 * nothing saved, uploaded or sent to an agent. A read token is enough: it
 * shows what `cutover status` and `cutover check` already show, so a reviewer
 * or a CI job without deploy rights can see a deploy before someone runs it.
 * The artifact need not be uploaded: the plan takes its sha256 and size.
 */
export function planRoutes(deps: PlanApiDeps): Router {
  const { tokens, artifacts, apps, rollouts } = deps;
  const router = express.Router();

  router.post("/v1/deployments/plan", requireRole(tokens, "read"), (request, response) => {
    const body = (request.body ?? {}) as { spec?: unknown; specFile?: unknown; release?: unknown; artifactSha256?: unknown; artifactBytes?: unknown; skipFailingHosts?: unknown };
    if (typeof body.spec !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", '"spec" must be the app spec YAML text');
    if (typeof body.release !== "string" || !isValidRelease(body.release)) throw new ApiError(400, "ERR_BAD_REQUEST", `"release" must be ${RELEASE_RULE}`);
    const specFile = typeof body.specFile === "string" ? body.specFile : "app.yml";
    let artifact: DeployPlanView["artifact"] = null;
    if (body.artifactSha256 !== undefined) {
      if (typeof body.artifactSha256 !== "string" || !SHA256.test(body.artifactSha256)) throw new ApiError(400, "ERR_BAD_REQUEST", '"artifactSha256" must be a hex sha256');
      const stored = artifacts.get(body.artifactSha256);
      const bytes = stored?.size ?? body.artifactBytes;
      if (typeof bytes !== "number" || !Number.isSafeInteger(bytes) || bytes < 0) throw new ApiError(400, "ERR_BAD_REQUEST", '"artifactBytes" must be the artifact\'s size when it was not uploaded');
      artifact = { sha256: body.artifactSha256, bytes, uploaded: stored !== undefined };
    }
    let spec: AppSpec;
    try {
      // As POST /v1/deployments parses it: the artifact path names a file on the operator's machine.
      spec = parseSpec(body.spec, { file: specFile, baseDir: "/", exists: (path) => (!artifact ? null : /\.(tar\.gz|tgz)$/.test(path) ? "file" : "dir") });
    } catch (error) {
      if (error instanceof SpecError) throw new ApiError(400, "ERR_SPEC_INVALID", error.message);
      throw error;
    }
    if (spec.artifact && !artifact) throw new ApiError(400, "ERR_BAD_REQUEST", "the spec names an artifact: pass its artifactSha256 and artifactBytes");

    const selection = rollouts.selectForDeploy({ spec, skipFailingHosts: body.skipFailingHosts === true, artifactBytes: artifact?.bytes });
    const hosts = hostPlans(spec.app, body.release, selection.order);
    const previous = apps.get(spec.app);
    const specChanges = previous ? specDiff(previous, spec) : null;
    const view: DeployPlanView = {
      app: spec.app,
      release: body.release,
      strategy: selection.order.shape,
      outcome: planOutcome(hosts, specChanges === null || specChanges.length > 0, selection.refusals.length > 0),
      batches: selection.order.batches.map((batch) => batch.map((h) => h.name)),
      hosts,
      leftOut: [...selection.preflight.filter((c) => !selection.hosts.some((h) => h.name === c.name)).map((c) => c.name), ...selection.leftOut.map((h) => h.name)].sort(),
      specChanges,
      preflight: { ok: selection.preflight.every((c) => c.ok), hosts: selection.preflight },
      artifact,
      refusals: selection.refusals.map((r) => ({ code: r.code, message: r.message })),
    };
    response.json(view);
  });

  return router;
}
