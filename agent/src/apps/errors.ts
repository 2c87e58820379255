/** Why a local deploy or rollback did not happen; `code` is what the coordinator shows. */
export class DeployError extends Error {
  constructor(
    readonly code:
      | "ERR_PREFLIGHT_MEMORY"
      | "ERR_PREFLIGHT_DISK"
      | "ERR_PREFLIGHT_LOAD"
      | "ERR_INVALID_DEFINITION"
      | "ERR_NO_PREVIOUS_RELEASE"
      | "ERR_PREVIOUS_RELEASE_GONE"
      | "ERR_AGENT_RESTARTED"
      | "ERR_PORT_IN_USE"
      | "ERR_DIRECTIVE_REFUSED"
      | "ERR_TLS_FILE_REFUSED"
      | "ERR_INVALID_APP",
    message: string,
  ) {
    super(message);
  }
}
