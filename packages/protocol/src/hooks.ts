/** The capability an agent announces when it runs spec hooks (Command.run_hook); a spec with hooks is refused for a fleet where a host lacks it. */
export const RUNS_HOOKS = "hooks";

/** The hooks RunHook.hook may name: the spec's own names. */
export const HOOK_NAMES = ["pre_deploy", "post_switch"] as const;

/** At most this many bytes of a hook's last output in HookOutcome.output_tail (and in the deploy's error). */
export const HOOK_OUTPUT_TAIL_BYTES = 4096;

/** RunHook.timeout_ms bounds, the spec's own (1s..1h): the agent refuses anything else. */
export const MIN_HOOK_TIMEOUT_MS = 1_000;
export const MAX_HOOK_TIMEOUT_MS = 3_600_000;

/** At most this many argv strings in RunHook.command. */
export const MAX_HOOK_ARGS = 256;
