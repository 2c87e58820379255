export {
  v1,
  PROTOCOL_VERSION,
  MAX_FRAME_BYTES,
  MAX_ARTIFACT_CHUNK,
  NONCE_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  encodeEnvelope,
  decodeEnvelope,
  helloProofBytes,
  welcomeProofBytes,
} from "./frame.js";
export type { Envelope, EnvelopeInit, BodyKind, KeyShares, WelcomeProofInit } from "./frame.js";
export { FOLLOWS_LEADER, MAX_MEMBERS } from "./leadership.js";
export { COMMAND_MAC, KEY_SHARE_BYTES, MAC_BYTES, commandKeyInfo } from "./session-mac.js";
export { signedCommandBytes, openSignedCommand } from "./signing.js";
export { normalizeFingerprint, isFingerprint } from "./fingerprint.js";
export { isLoopbackHost } from "./loopback.js";
export { ProtocolError, ProtocolErrorCode, CloseCode, RefusalCode } from "./errors.js";
export { isValidName, isValidRelease, isValidLabel, NAME_RULE, RELEASE_RULE, LABEL_RULE } from "./names.js";
export type { cutover } from "../gen/proto.js";
export { formatEnrollmentToken, enrollmentTokenKeyId, ENROLLMENT_TOKEN_PREFIX } from "./enrollment-token.js";
export {
  LATENCY_BUCKETS_MS,
  MAX_REQUEST_COUNTERS,
  addTotals,
  emptyTotals,
  errorRate,
  latencyQuantileMs,
  totalsFromWire,
  totalsSince,
  type RequestTotals,
} from "./request-metrics.js";
export { REPORTS_KEPT_RELEASES, MAX_KEPT_RELEASES } from "./kept-releases.js";
export { HOOK_NAMES, HOOK_OUTPUT_TAIL_BYTES, MAX_HOOK_ARGS, MAX_HOOK_TIMEOUT_MS, MIN_HOOK_TIMEOUT_MS, RUNS_HOOKS } from "./hooks.js";
export { REMOVES_APPS } from "./app-removal.js";
export { requestMetricFamilies, type LabelledTotals, type MetricFamily } from "./request-series.js";
export { BUNDLE_SIGNATURE_CONTEXT, bundleSignedText, compareVersions, EXIT_UPGRADE, isValidVersion, UPGRADE_ROLLED_BACK_EVENT, UPGRADES_ITSELF } from "./agent-upgrade.js";
export { SERVES_VIRTUAL_HOSTS, TAKES_SECRETS } from "./virtual-hosts.js";
