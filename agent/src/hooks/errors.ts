/** Stable codes for every way a hook can be refused or fail; the coordinator shows them with the hook's output. */
export type HookErrorCode =
  /** The RunHook is not one this host runs: unknown hook, bad argv or timeout, no such release, or (post_switch) the release is not live here. */
  | "ERR_INVALID_HOOK"
  /** The hook ran and exited non-zero, or a signal ended it. */
  | "ERR_HOOK_FAILED"
  /** The hook was still running at its timeout: its process group was killed. */
  | "ERR_HOOK_TIMEOUT"
  /** The hook could not be started (program not found, not executable, cannot switch user). */
  | "ERR_HOOK_SPAWN_FAILED"
  /** The agent restarted while this command's hook ran: how it ended is unknown, and it is not run a second time. */
  | "ERR_HOOK_INTERRUPTED";

export class HookError extends Error {
  override readonly name = "HookError";
  constructor(
    readonly code: HookErrorCode,
    message: string,
  ) {
    super(message);
  }
}
