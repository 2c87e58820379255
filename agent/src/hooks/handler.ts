import type { Logger } from "@cutover/log";
import { isValidRelease, v1, type cutover } from "@cutover/protocol";
import { admitDefinition, type AdmissionPolicy } from "../apps/admission.js";
import { otherColor, type Color } from "../apps/app-state.js";
import { appDefinitionOf, portOf } from "../apps/definition.js";
import { SecretVault } from "../apps/secret-vault.js";
import { belowAgent, readEnvFile, unprotectFromOom } from "../process/index.js";
import type { OperationResult } from "../commands/dispatcher.js";
import type { ReleaseDirs } from "../releases/release-dirs.js";
import { hookCommand, hookRequestOf, type HookRequest } from "./command.js";
import { HookError } from "./errors.js";
import type { HookJournal } from "./journal.js";
import { runHook, type HookResult } from "./run.js";

const Status = v1.CommandResult.Status;

export interface HookHandlerOptions {
  /** The agent's address: ${ADDRESS}, and HOST in the environment. */
  address: string;
  /** The same rules as a Deploy's: run.user resolved, uid 0 refused unless the host allows root apps. */
  admission: AdmissionPolicy;
  /** Where the release runs from (pre_deploy: fetched and unpacked here first). */
  releases: Pick<ReleaseDirs, "dirOf">;
  /** What is live for an app on this host (AppManager.snapshot). */
  live(app: string): { color: Color; release: string } | null | undefined;
  /** Streams an event of the command (the hook's output, line by line). */
  emit(event: cutover.v1.Event.$Properties): void;
  log: Logger;
  /** Each command's hook run, saved, so a restarted agent asked the same command id never runs it again (absent: memory only). */
  journal?: HookJournal;
  /** Runs the hook's process; tests replace it. */
  run?: typeof runHook;
}

/**
 * The RunHook operation: checks the request as a Deploy's definition is
 * checked (and the hook's own argv and timeout), finds the release's
 * directory (pre_deploy: fetched and unpacked first, like a Deploy does;
 * post_switch: the live one), runs the hook as the app and answers with how it
 * ended. Refusals are REJECTED, nothing run; a hook that ran and failed is FAILED.
 */
export function hookHandler(options: HookHandlerOptions): (command: cutover.v1.Command) => Promise<OperationResult> {
  const run = options.run ?? runHook;
  return async (command) => {
    const recorded = options.journal?.read(command.commandId);
    if (recorded?.state === "done") return recorded.result;
    if (recorded?.state === "running") {
      const hook = command.runHook?.hook || "the";
      const message = `the agent restarted while this ${hook} hook ran (started ${new Date(recorded.startedAt).toISOString()}); how it ended is unknown and it is not run a second time: check what it did, then deploy again`;
      return { status: Status.FAILED, errorCode: "ERR_HOOK_INTERRUPTED", message };
    }
    const wire = command.runHook ?? {};
    let request: HookRequest;
    let prepared: ReturnType<typeof prepare>;
    try {
      request = hookRequestOf(wire);
      prepared = prepare(wire, request, options);
    } catch (error) {
      return refused(error);
    }
    const { definition, release, color } = prepared;
    const app = definition.name;
    const cwd = await options.releases.dirOf(app, { release, sha256: wire.artifact?.sha256 || undefined });
    let spec;
    try {
      // The app's environment as its instances get it: the env file read now, the secrets this command brought.
      const { env, user, envFile } = definition.run;
      const vault = new SecretVault();
      vault.put(app, wire.secrets);
      const secretEnv = vault.environment(app, definition.run.secretEnv);
      const fileEnv = envFile ? await readEnvFile(envFile) : undefined;
      spec = hookCommand(request, { command: [], env, user, fileEnv, secretEnv }, { port: portOf(definition, color), address: options.address, color, release, releaseDir: cwd }, options.admission);
    } catch (error) {
      return refused(error);
    }
    const emit = (message: string, kind = "hook") => options.emit({ commandId: command.commandId, atUnixMs: Date.now(), kind, app, message });
    const who = definition.run.user ?? "the agent's user";
    options.log.info("running a hook", { app, hook: request.hook, release, user: who, cwd });
    emit(`${request.hook} hook of ${release}: ${JSON.stringify(request.command)} as ${who} in ${cwd} (timeout ${request.timeoutMs / 1000}s)`);
    // Saved before the spawn: from here on, a restarted agent answers this command id instead of running the hook again.
    await options.journal?.write(command.commandId, { state: "running", startedAt: Date.now() });
    // Below the agent, as apps run (process/priority.ts): a migration saturating the host must not starve the agent's session.
    const result = await run(belowAgent(spec), {
      timeoutMs: request.timeoutMs,
      onLine: (line) => emit(line, "hook.output"),
      onSpawn: (pid) => {
        try {
          unprotectFromOom(pid);
        } catch (error) {
          options.log.warn("cannot reset a hook's OOM score; it keeps the agent's", { app, hook: request.hook, error: (error as Error).message });
        }
      },
    });
    const outcome: cutover.v1.HookOutcome.$Properties = {
      exitCode: result.exitCode ?? -1,
      signal: result.signal ?? "",
      timedOut: result.timedOut,
      outputTail: result.outputTail,
      durationMs: result.durationMs,
      cwd,
    };
    const failure = failureOf(request, result);
    options.log.info(failure ? "a hook failed" : "a hook passed", { app, hook: request.hook, exitCode: result.exitCode ?? -1, signal: result.signal ?? "", timedOut: result.timedOut, ms: result.durationMs });
    emit(failure ? `${request.hook} hook failed: ${failure.message}` : `${request.hook} hook passed in ${result.durationMs} ms`);
    const answer: OperationResult = failure ? { status: Status.FAILED, errorCode: failure.code, message: failure.message, hookRan: outcome } : { status: Status.OK, hookRan: outcome };
    await options.journal?.write(command.commandId, { state: "done", result: answer });
    return answer;
  };
}

/** The definition (checked and admitted as a Deploy's is), the release, and the color whose port and name the hook sees. */
function prepare(wire: cutover.v1.RunHook.$Properties, request: HookRequest, options: HookHandlerOptions) {
  const definition = appDefinitionOf(wire.app);
  const release = wire.release ?? "";
  if (!isValidRelease(release)) throw new HookError("ERR_INVALID_HOOK", `the ${request.hook} hook of ${definition.name} names no valid release (${JSON.stringify(release)})`);
  admitDefinition(definition, options.admission);
  const live = options.live(definition.name);
  if (request.hook === "post_switch" && live?.release !== release) {
    throw new HookError("ERR_INVALID_HOOK", `post_switch hook of ${definition.name} ${release}: ${live ? `${live.release} is live on this host` : "nothing is live on this host"}, so it did not run`);
  }
  // pre_deploy: the color the release would start on here; post_switch: the live one.
  const color: Color = request.hook === "post_switch" ? live!.color : live ? otherColor(live.color) : "blue";
  return { definition, release, color };
}

function failureOf(request: HookRequest, result: HookResult): HookError | undefined {
  const hook = `the ${request.hook} hook`;
  if (result.spawnError) return new HookError("ERR_HOOK_SPAWN_FAILED", `${hook} could not start: ${result.spawnError}`);
  if (result.timedOut) return new HookError("ERR_HOOK_TIMEOUT", `${hook} was still running after ${request.timeoutMs / 1000}s: its process group was killed`);
  if (result.exitCode === 0) return undefined;
  if (result.exitCode !== null) return new HookError("ERR_HOOK_FAILED", `${hook} exited with code ${result.exitCode} after ${result.durationMs} ms`);
  return new HookError("ERR_HOOK_FAILED", `${hook} was ended by ${result.signal ?? "a signal"} after ${result.durationMs} ms`);
}

function refused(error: unknown): OperationResult {
  const code = (error as { code?: string }).code ?? "ERR_INVALID_HOOK";
  return { status: Status.REJECTED, errorCode: code, message: `${(error as Error).message}; nothing was run` };
}
