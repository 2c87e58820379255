import { HOOK_NAMES, MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT_MS, MIN_HOOK_TIMEOUT_MS } from "@cutover/protocol";
import { processSpec, substitute, type ProcessSpec, type ProcessSpecOptions, type RunSection, type SpecContext } from "../process/index.js";
import { HookError } from "./errors.js";

export type HookName = (typeof HOOK_NAMES)[number];

/** A RunHook's own fields, checked: the agent does not take the coordinator's word for them. */
export interface HookRequest {
  hook: HookName;
  command: string[];
  timeoutMs: number;
}

/** The `${NAME}`s a hook's argv may use (the spec's HOOK_VARIABLES): pre_deploy runs before the release has a port or color. */
const HOOK_VARIABLES: Readonly<Record<HookName, readonly (keyof Vars)[]>> = {
  pre_deploy: ["RELEASE", "ADDRESS"],
  post_switch: ["PORT", "ADDRESS", "COLOR", "RELEASE"],
};

interface Vars {
  PORT: string;
  ADDRESS: string;
  COLOR: string;
  RELEASE: string;
}

/** Throws ERR_INVALID_HOOK unless the wire's hook name, argv and timeout are what the spec allows. */
export function hookRequestOf(wire: { hook?: string | null; command?: string[] | null; timeoutMs?: number | null }): HookRequest {
  const hook = HOOK_NAMES.find((name) => name === wire.hook);
  if (!hook) throw new HookError("ERR_INVALID_HOOK", `unknown hook ${JSON.stringify(wire.hook ?? "")}: this agent runs ${HOOK_NAMES.join(" and ")}`);
  const command = wire.command ?? [];
  if (command.length === 0 || command.length > MAX_HOOK_ARGS) {
    throw new HookError("ERR_INVALID_HOOK", `hooks.${hook}.command has ${command.length} entries: give the program and its arguments, at most ${MAX_HOOK_ARGS}`);
  }
  for (const [i, arg] of command.entries()) {
    if (typeof arg !== "string" || arg.includes("\0") || (i === 0 && arg === "")) {
      throw new HookError("ERR_INVALID_HOOK", `hooks.${hook}.command[${i}] is refused by this host: a string without NUL characters${i === 0 ? ", not empty" : ""}`);
    }
  }
  const timeoutMs = wire.timeoutMs ?? 0;
  if (!Number.isInteger(timeoutMs) || timeoutMs < MIN_HOOK_TIMEOUT_MS || timeoutMs > MAX_HOOK_TIMEOUT_MS) {
    throw new HookError("ERR_INVALID_HOOK", `hooks.${hook}.timeout of ${timeoutMs} ms is refused by this host: from ${MIN_HOOK_TIMEOUT_MS} to ${MAX_HOOK_TIMEOUT_MS} ms`);
  }
  return { hook, command: [...command], timeoutMs };
}

/**
 * The hook as a process: its argv (only the hook's own `${NAME}`s, checked
 * here too), the app's environment as `processSpec` builds it for an instance
 * on `ctx` (the color the release runs or will run as on this host) — its env
 * file's and secrets' values already in `run` —, CUTOVER_HOOK set, and run.user resolved exactly as for the app — uid 0
 * refused unless the host allows root apps. Pure apart from the user lookup.
 */
export function hookCommand(request: HookRequest, run: RunSection, ctx: SpecContext, options: ProcessSpecOptions = {}): ProcessSpec {
  const all: Vars = { PORT: String(ctx.port), ADDRESS: ctx.address, COLOR: ctx.color, RELEASE: ctx.release };
  const allowed = Object.fromEntries(HOOK_VARIABLES[request.hook].map((name) => [name, all[name]]));
  const command = request.command.map((arg, i) => substitute(arg, allowed, `hooks.${request.hook}.command[${i}]`));
  // The argv is final: `$$` is left as `$$` by substitute, and a second pass would leave it again.
  const spec = processSpec({ ...run, command }, ctx, options);
  if (request.hook === "pre_deploy") {
    // No instance of the release listens anywhere yet: a port or color would mislead.
    delete spec.env.PORT;
    delete spec.env.COLOR;
  }
  spec.env.CUTOVER_HOOK = request.hook;
  return spec;
}
