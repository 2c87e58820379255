import { randomUUID } from "node:crypto";
import { RUNS_HOOKS, v1, type cutover } from "@cutover/protocol";
import type { AppSpec, HookName, HookSpec } from "@cutover/spec";
import { CommandError } from "../fleet/fleet.js";
import type { HostRecord } from "../store/hosts.js";
import { DEPLOY_COMMAND_MARGIN_MS, RESUME_WAIT_MS, type RolloutRun } from "./run.js";

const Status = v1.CommandResult.Status;

/** Time a post_switch hook's command gets beyond the hook's own timeout (the release is on the host already). */
const POST_SWITCH_COMMAND_MARGIN_MS = 30_000;
/** At most this much of a hook's output goes into a deployment's or a host's error. */
const ERROR_OUTPUT_CHARS = 1_000;
/** The event that records a passed pre_deploy hook: what a resumed deployment reads so the hook never runs twice. */
export const PRE_DEPLOY_PASSED = "hook.passed";

/** The spec's hooks, by their spec names. */
function hooksOf(spec: AppSpec): [HookName, HookSpec][] {
  const hooks = spec.hooks;
  return [
    ["pre_deploy", hooks?.preDeploy],
    ["post_switch", hooks?.postSwitch],
  ].filter((entry): entry is [HookName, HookSpec] => entry[1] !== undefined);
}

/**
 * Why a spec with hooks cannot go to these hosts, or undefined: every host it
 * reaches runs post_switch and may be the one that runs pre_deploy, so every
 * agent must announce RUNS_HOOKS. An older agent would answer the operation
 * with UNSUPPORTED halfway through; refused before anything changes instead.
 */
export function hooksUnsupported(spec: AppSpec, hosts: HostRecord[]): string | undefined {
  const hooks = hooksOf(spec).map(([name]) => name);
  if (hooks.length === 0) return undefined;
  const old = hosts.filter((h) => !h.capabilities.includes(RUNS_HOOKS));
  if (old.length === 0) return undefined;
  const named = old.map((h) => `${h.name} (agent ${h.agentVersion || "unknown"})`).join(", ");
  return `the spec has hooks (${hooks.join(", ")}), which the agents of ${named} cannot run (no "${RUNS_HOOKS}" capability): upgrade those agents, or deploy without hooks`;
}

/** The RunHook of `hook` for `host`: the app, release, artifact and secrets exactly as its Deploy carries them. */
function hookOperation(run: RolloutRun, host: HostRecord, name: HookName, hook: HookSpec) {
  const deploy = run.deployOperation(host, false).deploy ?? {};
  const runHook: cutover.v1.RunHook.$Properties = {
    app: deploy.app,
    release: deploy.release,
    artifact: deploy.artifact,
    secrets: deploy.secrets,
    hook: name,
    command: hook.command,
    timeoutMs: hook.timeoutMs,
  };
  return { runHook };
}

/** A hook's failure in one line: the agent's message and code, and its last output (bounded). */
function describeFailure(result: cutover.v1.CommandResult): string {
  const tail = (result.hookRan?.outputTail ?? "").trim();
  const lines = tail === "" ? "" : `; its last output: ${tail.split("\n").join(" | ").slice(-ERROR_OUTPUT_CHARS)}`;
  return `${result.message || "failed"} (${result.errorCode || Status[result.status]})${lines}`;
}

/**
 * Sends a hook and waits for its outcome; a link that drops while it runs is
 * waited for and asked again with the same command id (the agent answers a
 * repeated id with the same run, never a second one).
 */
async function sendHook(run: RolloutRun, host: HostRecord, name: HookName, hook: HookSpec, commandId: string, timeoutMs: number): Promise<cutover.v1.CommandResult> {
  const { deployments, fleet } = run.deps;
  await fleet.whenOnline(host.id, RESUME_WAIT_MS);
  for (;;) {
    try {
      return await fleet.sendCommand(host, hookOperation(run, host, name, hook), timeoutMs, (event) => deployments.addEvent(run.id, host.name, event.kind, event.message), commandId);
    } catch (error) {
      if (!(error instanceof CommandError) || error.code !== "ERR_HOST_DISCONNECTED") throw error;
      run.event(host.name, `unreachable while its ${name} hook ran: waiting for it to come back`, "hook");
      if (!(await fleet.whenOnline(host.id, Math.max(0, run.deployment.createdAt + run.spec.strategy.progressDeadlineMs - Date.now())))) throw error;
    }
  }
}

/**
 * Runs `work` once the spec's pre_deploy hook passed, on the first host of the
 * deploy's order (the first of its first batch; hosts that failed the
 * preflight are not in the order). A hook that passed is recorded as a
 * PRE_DEPLOY_PASSED event before anything else happens, and a resumed
 * deployment that finds it does not run the hook again. A hook that fails
 * ends the deployment `failed` before any host was sent anything else, every
 * host skipped, with the hook's output in the error and the events.
 */
export function afterPreDeploy(hosts: HostRecord[], work: (run: RolloutRun) => Promise<void>): (run: RolloutRun) => Promise<void> {
  return async (run) => {
    if (await preDeploy(run, hosts[0])) await work(run);
  };
}

async function preDeploy(run: RolloutRun, host: HostRecord | undefined): Promise<boolean> {
  const hook = run.spec.hooks?.preDeploy;
  if (!hook || !host || run.deployment.kind !== "deploy") return true;
  const { deployments } = run.deps;
  const passed = deployments.events(run.id).find((e) => e.kind === PRE_DEPLOY_PASSED);
  if (passed) {
    run.event(passed.hostName, "pre_deploy hook passed before the coordinator restarted: not run again", "hook");
    return true;
  }
  // The host's Deploy command id, recorded now: it lets the host download the artifact for the hook, and its Deploy goes out with it later.
  const commandId = deployments.host(run.id, host.name)?.commandId ?? randomUUID();
  deployments.updateHost(run.id, host.name, { commandId });
  await deployments.written();
  run.event(host.name, `pre_deploy hook on ${host.name}, before any host switches`, "hook");
  let failure: string;
  try {
    const result = await sendHook(run, host, "pre_deploy", hook, `${commandId}.pre_deploy`, hook.timeoutMs + DEPLOY_COMMAND_MARGIN_MS);
    if (result.status === Status.OK) {
      deployments.addEvent(run.id, host.name, PRE_DEPLOY_PASSED, `pre_deploy passed in ${result.hookRan?.durationMs ?? 0} ms`);
      return true;
    }
    failure = describeFailure(result);
  } catch (error) {
    failure = error instanceof CommandError ? `${error.message} (${error.code})` : (error as Error).message;
  }
  // The transition's event says why; the agent's own events had the output line by line.
  const why = `pre_deploy hook failed on ${host.name}: ${failure}; no host was switched`;
  for (const h of deployments.hosts(run.id)) if (h.state === "pending") deployments.updateHost(run.id, h.hostName, { state: "skipped" });
  deployments.transition(run.id, "failed", why);
  return false;
}

/**
 * The spec's post_switch hook on a host that just switched to the new release
 * (not on one that already served it, nor in a rollback). Undefined when it
 * passed (or there is none); else the host's error: the host was switched
 * back to its previous release first, as a failed host's agent does by itself.
 */
export async function postSwitch(run: RolloutRun, host: HostRecord, outcome: cutover.v1.DeployOutcome.$Properties, deployCommandId: string, inPlace: boolean): Promise<string | undefined> {
  const hook = run.spec.hooks?.postSwitch;
  if (!hook || outcome.unchanged || run.deployment.kind !== "deploy") return undefined;
  let failure: string;
  try {
    const result = await sendHook(run, host, "post_switch", hook, `${deployCommandId}.post_switch`, hook.timeoutMs + POST_SWITCH_COMMAND_MARGIN_MS);
    if (result.status === Status.OK) return undefined;
    failure = describeFailure(result);
  } catch (error) {
    failure = error instanceof CommandError ? `${error.message} (${error.code})` : (error as Error).message;
  }
  if (!outcome.previousRelease) return `post_switch hook failed: ${failure}; first release on this host, so it keeps serving ${outcome.release}`;
  const back = await switchBack(run, host, outcome, inPlace);
  return `post_switch hook failed: ${failure}; ${back}`;
}

/** Rolls one host back after its post_switch hook failed, as a halted rollout rolls hosts back; says where it ended. */
async function switchBack(run: RolloutRun, host: HostRecord, outcome: cutover.v1.DeployOutcome.$Properties, inPlace: boolean): Promise<string> {
  await run.rollBackHosts([{ host, ok: false, outcome }], inPlace);
  const row = run.deps.deployments.host(run.id, host.name);
  return row?.state === "rolled_back" ? `switched back to ${row.release}` : "switching it back failed (see its events)";
}
