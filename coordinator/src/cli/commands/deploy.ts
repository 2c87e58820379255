import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { Command } from "commander";
import { parseDocument } from "yaml";
import { isValidRelease, RELEASE_RULE } from "@cutover/protocol";
import { parseDuration, parseSpec, SpecError, type AppSpec } from "@cutover/spec";
import type { DeploymentView } from "../../api/deployments.js";
import type { DeployPlanView } from "../../api/plan.js";
import { packArtifact } from "../artifact.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { printable } from "../terminal-text.js";
import { stdoutTerminal } from "../terminal.js";
import { deploymentJson, followDeployment, progressView, renderDeploymentSummary } from "../progress.js";
import { renderPlan } from "../plan-view.js";
import { isLockRefusal, waitForUnlock } from "./lock.js";

export interface DeployOptions {
  release?: string;
  attach?: string;
  strategy?: string;
  batch?: string;
  json?: boolean;
  skipFailingHosts?: boolean;
  detach?: boolean;
  lockWait?: string;
  plan?: boolean;
}

/** Reads and checks the spec (with command-line overrides applied) before anything is sent. */
export function loadSpec(file: string, overrides: { strategy?: string; batch?: string }): { spec: AppSpec; text: string } {
  try {
    return readSpec(file, overrides);
  } catch (error) {
    if (error instanceof SpecError) throw new ExitError(`the app spec is invalid; nothing was deployed:\n${error.message}`, EXIT.usage);
    throw error;
  }
}

/** The spec file with the overrides applied, parsed: an unreadable file is an ExitError, an invalid spec a SpecError with every issue. */
export function readSpec(file: string, overrides: { strategy?: string; batch?: string }): { spec: AppSpec; text: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ExitError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, EXIT.usage);
  }
  if (overrides.strategy !== undefined || overrides.batch !== undefined) {
    const document = parseDocument(text);
    if (overrides.strategy !== undefined) document.setIn(["strategy", "type"], overrides.strategy);
    if (overrides.batch !== undefined) document.setIn(["strategy", "batch"], /^\d+$/.test(overrides.batch) ? Number(overrides.batch) : overrides.batch);
    text = document.toString();
  }
  return { spec: parseSpec(text, { file }), text };
}

function durationOption(flag: string, value: string): number {
  try {
    return parseDuration(value);
  } catch (error) {
    throw new ExitError(`${flag}: ${(error as Error).message}`, EXIT.usage);
  }
}

/**
 * Creates the deployment; with `lockWaitMs`, a refusal because the app is locked waits
 * (saying so on `notices`) for the lock's release, then asks again, until that much time
 * has passed. Another caller may lock it again first: then it waits again.
 */
async function postDeployment(client: ApiClient, app: string, body: object, lockWaitMs: number | undefined, notices: NodeJS.WritableStream): Promise<DeploymentView> {
  const deadline = Date.now() + (lockWaitMs ?? 0);
  for (;;) {
    try {
      return await client.post<DeploymentView>("/v1/deployments", body);
    } catch (error) {
      if (lockWaitMs === undefined || !isLockRefusal(error)) throw error;
      notices.write(`${printable(error.message)}\nwaiting up to ${Math.ceil(Math.max(0, deadline - Date.now()) / 1000)}s for ${app}'s lock to be released (--lock-wait)\n`);
      await waitForUnlock(client, app, deadline);
    }
  }
}

/** Sends a deployment (already created on the coordinator) to the terminal and returns the exit code. */
export async function reportDeployment(client: ApiClient, created: DeploymentView, json: boolean | undefined): Promise<void> {
  const final = await followDeployment(client, created.id, progressView(Boolean(json)));
  process.stdout.write(json ? `${JSON.stringify(deploymentJson(final))}\n` : `${renderDeploymentSummary(final, stdoutTerminal())}\n`);
  if (final.state !== "succeeded") throw new ExitError(`${final.kind} ${final.state}${final.error ? `: ${final.error}` : ""}`, EXIT.failed);
}

/** `deploy --plan`'s exit code for each outcome: 0 nothing would change, 2 something would, 1 the deploy would be refused. */
export const PLAN_EXIT_CODES = { "no-change": EXIT.ok, change: EXIT.changes, refused: EXIT.failed } as const;

/**
 * `deploy --plan`: asks the coordinator what this deploy would do and prints it.
 * The artifact is packed only to learn its sha256 and size; nothing is uploaded.
 */
async function planDeploy(client: ApiClient, spec: AppSpec, body: object, json: boolean | undefined): Promise<void> {
  let artifact: { artifactSha256: string; artifactBytes: number } | undefined;
  if (spec.artifact) {
    const packed = await packArtifact(spec.artifact);
    packed.cleanup();
    artifact = { artifactSha256: packed.sha256, artifactBytes: packed.size };
  }
  const plan = await client.post<DeployPlanView>("/v1/deployments/plan", { ...body, ...artifact });
  process.stdout.write(json ? `${JSON.stringify(plan, null, 2)}\n` : `${renderPlan(plan)}\n`);
  if (plan.outcome === "refused") throw new ExitError(`plan: a deploy now would be refused: ${plan.refusals.map((r) => `${r.message} (${r.code})`).join("; ")}`, PLAN_EXIT_CODES.refused);
  if (plan.outcome === "change") {
    const hosts = plan.hosts.filter((h) => h.action === "deploy").length;
    throw new ExitError(`plan: the deploy would change ${spec.app} (${hosts} of ${plan.hosts.length} host(s) get ${plan.release}); nothing was changed`, PLAN_EXIT_CODES.change);
  }
}

export function registerDeploy(program: Command): void {
  program
    .command("deploy")
    .description("deploy a release of the app in SPEC to the hosts it selects; exit 0 only when every host succeeded")
    .argument("[spec]", "the app spec (YAML); required unless --attach")
    .option("--release <version>", "release version, e.g. v2 or 1.4.0+build7; required unless --attach")
    .option("--strategy <type>", "override strategy.type: bluegreen, rolling, canary or fleet-bluegreen")
    .option("--batch <n|p%>", "override strategy.batch: hosts at once, a count or a percent")
    .option("--skip-failing-hosts", "leave out hosts that fail the resource preflight (named) instead of refusing the deploy")
    .option("--detach", "start the deployment and return; follow it with `cutover status`")
    .option("--lock-wait <duration>", "if the app is locked, wait up to this long (e.g. 10m) for its release, then deploy")
    .option("--plan", "show what the deploy would do (hosts, batches, release and spec changes, preflight) and change nothing; exit 0: no change, 2: changes, 1: refused or an error")
    .option("--attach <id>", "follow deployment ID (one `deploy --detach` started, or one another terminal runs) to its end, as if it had been started here; exit 0 only if it succeeds")
    .option("--json", "print one JSON object at the end instead of progress")
    .action(async (file: string | undefined, options: DeployOptions, command: Command) => {
      if (options.attach !== undefined) {
        if (file !== undefined || options.release !== undefined) throw new ExitError("--attach follows a deployment already started: it takes no SPEC and no --release", EXIT.usage);
        const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
        return reportDeployment(client, await client.get<DeploymentView>(`/v1/deployments/${encodeURIComponent(options.attach)}`), options.json);
      }
      if (file === undefined || options.release === undefined) throw new ExitError("deploy needs a SPEC and --release (or --attach ID to follow one already started)", EXIT.usage);
      if (!isValidRelease(options.release)) throw new ExitError(`--release must be ${RELEASE_RULE}`, EXIT.usage);
      if (options.plan && (options.detach || options.lockWait !== undefined)) throw new ExitError("--plan changes nothing: it takes neither --detach nor --lock-wait", EXIT.usage);
      const lockWaitMs = options.lockWait === undefined ? undefined : durationOption("--lock-wait", options.lockWait);
      const { spec, text } = loadSpec(file, options);
      const client = new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
      if (options.plan) {
        return planDeploy(client, spec, { spec: text, specFile: basename(file), release: options.release, skipFailingHosts: options.skipFailingHosts === true }, options.json);
      }
      let artifactSha256: string | undefined;
      if (spec.artifact) {
        const packed = await packArtifact(spec.artifact);
        try {
          artifactSha256 = packed.sha256;
          const known = await client.get<{ sha256: string }>(`/v1/artifacts/${packed.sha256}`).catch(() => undefined);
          if (!known) {
            if (!options.json) process.stdout.write(`uploading ${spec.artifact.path} (${packed.size} bytes, sha256 ${packed.sha256.slice(0, 12)}…)\n`);
            await client.putFile(`/v1/artifacts/${packed.sha256}`, packed.path, packed.size);
          }
        } finally {
          packed.cleanup();
        }
      }
      const body = { spec: text, specFile: basename(file), release: options.release, artifactSha256, skipFailingHosts: options.skipFailingHosts === true };
      const created = await postDeployment(client, spec.app, body, lockWaitMs, options.json ? process.stderr : process.stdout);
      if (options.detach) {
        process.stdout.write(options.json ? `${JSON.stringify(created)}\n` : `deployment ${created.id} started: \`cutover status ${spec.app}\` follows it\n`);
        return;
      }
      if (!options.json) process.stdout.write(`deployment ${created.id}: ${spec.app} ${options.release} (${spec.strategy.type}) to ${created.hosts.length} host(s)\n`);
      await reportDeployment(client, created, options.json);
    });
}
