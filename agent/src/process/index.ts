export { processSpec, substitute, SAFE_INHERITED_ENV, type ProcessSpec, type ProcessSpecOptions, type RunSection, type SpecContext } from "./spec.js";
export { findUser, lookupUserInPasswd, PASSWD_PATH, type UserIds, type UserLookup } from "./users.js";
export { resolveRunAs, ROOT_APPS_SETTING, type RootApps, type RunAsOptions } from "./run-as.js";
export { startProcess, type StartProcessOptions } from "./start.js";
export { readEnvFile, parseEnvFile } from "./env-file.js";
export { adoptProcess, identify, AppProcess, DEFAULT_EXIT_POLL_MS, type AdoptResult, type ExitStatus, type Identification } from "./app-process.js";
export { stopProcess, DEFAULT_STOP_POLL_MS, KILL_WAIT_MS, type StopOptions, type StopResult } from "./stop.js";
export {
  Supervisor,
  DEFAULT_RESTART_POLICY,
  MIN_LIVE_CHECK_INTERVAL_MS,
  UNHEALTHY_AFTER_FAILURES,
  type ExitCause,
  type RestartPolicy,
  type Schedule,
  type StopHow,
  type SupervisedProcess,
  type SupervisorEvents,
  type SupervisorOptions,
  type SupervisorPorts,
  type SupervisorState,
} from "./supervisor.js";
export {
  COLORS,
  instanceRecordPath,
  listInstanceRecords,
  readInstanceRecord,
  removeInstanceRecord,
  writeInstanceRecord,
  type Color,
  type InstanceIdentity,
  type InstanceRecord,
  type RecordListing,
} from "./record.js";
export { instanceLogPath, rotateIfLarge, DEFAULT_LOG_ROTATION, LOG_ROTATE_BYTES, LOG_ROTATE_KEEP, type LogRotation } from "./log-file.js";
export { readRssBytes } from "./proc.js";
export { PROCESS_ERROR_CODES, ProcessError, isProcessError, type ProcessErrorCode, type ProcessErrorDetails } from "./errors.js";
export { belowAgent, APP_NICE_INCREMENT, unprotectFromOom } from "./priority.js";
