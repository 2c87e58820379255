import express, { type Request, type Router } from "express";
import type { Logger } from "@cutover/log";
import { parseDuration, type CountOrPercent } from "@cutover/spec";
import type { Fleet } from "../fleet/fleet.js";
import { bundleVersion, DEFAULT_UPGRADE_DEADLINE_MS, runAgentUpgrade, UpgradeRefused, type HostUpgrade, type UpgradeReport } from "../fleet/agent-upgrade.js";
import { InstallerFileMissing, type InstallerSource } from "../installer/agent-bundle.js";
import type { AppStore } from "../store/apps.js";
import type { DeploymentStore } from "../store/deployments.js";
import type { HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";
import { parseLabelList } from "./tokens.js";

/** The largest bundle an admin may upload (install.sh's MAX_BUNDLE_BYTES). */
export const MAX_UPLOADED_BUNDLE_BYTES = 64 * 1024 * 1024;
/** Longest trial a caller may ask for. */
const MAX_DEADLINE_MS = 30 * 60_000;

export interface AgentApiDeps {
  fleet: Fleet;
  hosts: HostStore;
  tokens: TokenStore;
  installer: InstallerSource;
  log: Logger;
  /** A running deployment refuses an upgrade: its commands would meet restarting agents. */
  apps: AppStore;
  deployments: DeploymentStore;
}

/** One line of the upgrade's NDJSON answer: progress, then the report (or the refusal). */
export type UpgradeLine = { progress: HostUpgrade | { host: string; step: string } } | { report: UpgradeReport } | { error: { code: string; message: string } };

/** "3" or "25%": how many hosts each batch upgrades at once. */
export function parseBatch(text: string): CountOrPercent {
  const match = /^(\d+(?:\.\d+)?)%$/.exec(text);
  if (match) {
    const percent = Number(match[1]);
    if (percent <= 0 || percent > 100) throw new Error(`batch ${text}: a percent must be above 0% and at most 100%`);
    return { kind: "percent", percent };
  }
  if (!/^[1-9]\d*$/.test(text)) throw new Error(`batch ${JSON.stringify(text)}: expected a host count (1, 2, ...) or a percent (25%)`);
  return { kind: "count", count: Number(text) };
}

async function readBody(request: Request, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of request) {
    size += (part as Buffer).length;
    if (size > limit) throw new ApiError(413, "ERR_BUNDLE_TOO_LARGE", `the bundle is over ${limit} bytes`);
    parts.push(part as Buffer);
  }
  return Buffer.concat(parts);
}

/**
 * `cutover agents upgrade`: POST /v1/agents/upgrade?batch=N|P%&hosts=k=v,...&allowDowngrade=1&deadline=60s,
 * with an agent bundle as the body (application/octet-stream) or none for the one the
 * coordinator serves. The answer is NDJSON: progress lines as hosts move, then the report,
 * so a long upgrade keeps its connection busy and the operator sees each host.
 */
export function agentRoutes(deps: AgentApiDeps): Router {
  const router = express.Router();
  let running = false;
  router.post("/v1/agents/upgrade", requireRole(deps.tokens, "admin"), async (request, response) => {
    const query = request.query as Record<string, string | undefined>;
    let batch: CountOrPercent;
    let selector: Record<string, string>;
    let deadlineMs = DEFAULT_UPGRADE_DEADLINE_MS;
    try {
      batch = parseBatch(query.batch ?? "1");
      selector = query.hosts ? parseLabelList(query.hosts) : {};
      if (query.deadline) deadlineMs = parseDuration(query.deadline);
    } catch (error) {
      throw new ApiError(400, "ERR_BAD_REQUEST", (error as Error).message);
    }
    if (deadlineMs < 1_000 || deadlineMs > MAX_DEADLINE_MS) throw new ApiError(400, "ERR_BAD_REQUEST", `deadline must be between 1s and ${MAX_DEADLINE_MS / 60_000}m`);
    if (running) throw new ApiError(409, "ERR_UPGRADE_RUNNING", "an agent upgrade is running already: wait for it to finish");
    for (const app of deps.apps.names()) {
      const active = deps.deployments.active(app);
      if (active) throw new ApiError(409, "ERR_DEPLOYMENT_IN_PROGRESS", `${app}'s ${active.kind} ${active.id} is ${active.state}; nothing was changed: wait for it to end (\`cutover status ${app} --follow\`) or \`cutover abort ${app}\`, then upgrade the agents`);
    }
    running = true;
    try {
      const uploaded = await readBody(request, MAX_UPLOADED_BUNDLE_BYTES);
      let bundle;
      try {
        bundle = uploaded.length > 0 ? deps.installer.sign(uploaded) : deps.installer.bundle();
      } catch (error) {
        if (error instanceof InstallerFileMissing) throw new ApiError(404, error.code, `${error.message} (or pass --file BUNDLE)`);
        throw error;
      }
      const version = await bundleVersion(bundle.bytes).catch((error: Error) => {
        throw error instanceof UpgradeRefused ? new ApiError(400, error.code, error.message) : error;
      });
      response.locals.auditDetail = `${version} sha256:${bundle.sha256.slice(0, 12)} hosts ${query.hosts ?? "(all)"} batch ${query.batch ?? "1"}`;
      deps.log.warn("agent upgrade starting", { by: request.token!.name, version, sha256: bundle.sha256.slice(0, 12), hosts: query.hosts ?? "(all)" });
      const write = (line: UpgradeLine) => response.write(`${JSON.stringify(line)}\n`);
      let started = false;
      const start = () => {
        if (started) return;
        started = true;
        response.status(200).type("application/x-ndjson").setHeader("cache-control", "no-store");
      };
      try {
        const report = await runAgentUpgrade(
          {
            fleet: deps.fleet,
            hosts: deps.hosts,
            log: deps.log,
            progress: (progress) => {
              start();
              write({ progress });
            },
          },
          { bundle, version, selector, batch, allowDowngrade: query.allowDowngrade === "1", deadlineMs },
        );
        start();
        write({ report });
        response.end();
      } catch (error) {
        if (error instanceof UpgradeRefused && !started) throw new ApiError(409, error.code, error.message);
        if (!started) throw error;
        write({ error: { code: (error as { code?: string }).code ?? "ERR_INTERNAL", message: (error as Error).message } });
        response.end();
      }
    } finally {
      running = false;
    }
  });
  return router;
}
