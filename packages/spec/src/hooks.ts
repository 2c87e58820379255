/**
 * The spec's `hooks` section: commands a deploy runs around its switches,
 * argv only (no shell), each with a bounded timeout.
 */
import { MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT_MS, MIN_HOOK_TIMEOUT_MS } from "@cutover/protocol";
import { describe, type Section } from "./checker.js";
import * as D from "./defaults.js";
import type { HookName, HookSpec, HooksSpec } from "./types.js";
import { DURATION_RULE, durationMs } from "./units.js";

const HOOKS_KEYS = ["pre_deploy", "post_switch"] as const;
const HOOK_KEYS = ["command", "timeout"] as const;

// The bounds are the wire's (@cutover/protocol), so the spec and the agent check the same: 1s..1h (a deploy holds the app while a hook runs), 256 argv strings.
export { MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT_MS, MIN_HOOK_TIMEOUT_MS };

/**
 * The `${NAME}`s each hook's command may use. pre_deploy runs before the release
 * has a port or color anywhere, so only the release and the host's address;
 * post_switch runs against the live color, so those of run.command.
 */
export const HOOK_VARIABLES: Readonly<Record<HookName, readonly string[]>> = {
  pre_deploy: ["RELEASE", "ADDRESS"],
  post_switch: ["PORT", "ADDRESS", "COLOR", "RELEASE"],
};

const DEFAULT_TIMEOUT_MS: Readonly<Record<HookName, number>> = {
  pre_deploy: D.DEFAULT_PRE_DEPLOY_TIMEOUT_MS,
  post_switch: D.DEFAULT_POST_SWITCH_TIMEOUT_MS,
};

const COMMAND_RULE = 'the program and its arguments as a list of strings, like ["node", "migrate.js"] (no shell)';
const TIMEOUT_RULE = `${DURATION_RULE}, from 1s to 1h`;

/** `hooks` (the parent has it); `progressDeadlineMs` is undefined when strategy.progress_deadline is itself wrong. */
export function readHooks(root: Section, progressDeadlineMs: number | undefined): HooksSpec {
  const hooks = root.section("hooks", HOOKS_KEYS, "a mapping with pre_deploy and/or post_switch, like { pre_deploy: { command: [node, migrate.js] } }");
  if (!hooks) return {};
  const preDeploy = hooks.has("pre_deploy") ? readHook(hooks, "pre_deploy", progressDeadlineMs) : undefined;
  const postSwitch = hooks.has("post_switch") ? readHook(hooks, "post_switch", progressDeadlineMs) : undefined;
  return { ...(preDeploy && { preDeploy }), ...(postSwitch && { postSwitch }) };
}

function readHook(hooks: Section, name: HookName, progressDeadlineMs: number | undefined): HookSpec | undefined {
  const hook = hooks.section(name, HOOK_KEYS, `a mapping like { command: ["node", "migrate.js"], timeout: 5m }`, true);
  if (!hook) return undefined;
  const command = readArgv(hook, HOOK_VARIABLES[name]);
  const timeoutMs = hook.read("timeout", TIMEOUT_RULE, (v) => {
    const ms = typeof v === "string" ? durationMs(v) : undefined;
    return ms !== undefined && ms >= MIN_HOOK_TIMEOUT_MS && ms <= MAX_HOOK_TIMEOUT_MS ? ms : undefined;
  });
  const timeout = timeoutMs ?? DEFAULT_TIMEOUT_MS[name];
  if (timeoutMs !== undefined && progressDeadlineMs !== undefined && timeout >= progressDeadlineMs) {
    hook.c.fail(hook.at("timeout"), `less than strategy.progress_deadline (${progressDeadlineMs}ms), or the deploy's deadline passes while the hook runs`, describe(hook.value("timeout")));
  }
  return command && { command, timeoutMs: timeout };
}

/** argv: strings, no NUL, a program first, `${NAME}` only from `variables`. */
function readArgv(hook: Section, variables: readonly string[]): string[] | undefined {
  const field = hook.at("command");
  const value = hook.value("command");
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_HOOK_ARGS) {
    hook.c.wrong(field, `${COMMAND_RULE}, at most ${MAX_HOOK_ARGS} entries`, value);
    return undefined;
  }
  let ok = true;
  const argv = value.map((arg: unknown, i) => {
    const at = `${field}[${i}]`;
    const unknown = typeof arg === "string" ? unknownVariable(arg, variables) : undefined;
    if (typeof arg !== "string") hook.c.wrong(at, "a string (quote numbers and booleans)", arg);
    else if (arg.includes("\0")) hook.c.wrong(at, "a string without NUL characters", arg);
    else if (i === 0 && arg === "") hook.c.wrong(at, "a program name or path", arg);
    else if (unknown !== undefined) hook.c.fail(at, `only ${variables.map((v) => `\${${v}}`).join(", ")} in this hook`, `${describe(arg)} uses \${${unknown}}`);
    else return arg;
    ok = false;
    return "";
  });
  return ok ? argv : undefined;
}

/** The first `${NAME}` of `arg` that is not one of `variables` (`$$` escapes, as for run.command). */
function unknownVariable(arg: string, variables: readonly string[]): string | undefined {
  for (const match of arg.replaceAll("$$", "").matchAll(/\$\{([^}]*)\}?/g)) {
    if (!variables.includes(match[1]!)) return match[1]!;
  }
  return undefined;
}
