// The front load balancer of a fleet: an agent on an LB host manages one nginx
// site per app whose upstream is the app hosts' proxies, and applies the coordinator's full
// desired state of it (weights, drain/down, canary share, stickiness and pin) with the same
// validated, confirmed, restorable switching as the app hosts, in reload or live mode.

export { LB_ERROR_CODES, LbError, isLbError, type LbErrorCode } from "./errors.js";
export {
  backendKey,
  lbRevision,
  validateLbSite,
  type LbBackend,
  type LbBackendState,
  type LbCanary,
  type LbCanaryPin,
  type LbGroup,
  type LbSiteConfig,
  type LbState,
  type ParsedLbState,
} from "./config.js";
export { LB_BACKEND_HEADER, LB_REVISION_HEADER } from "./headers.js";
export { lbControlSocket, lbSitePath } from "./names.js";
export { renderLbSite, type RenderLbOptions } from "./render.js";
export {
  applyLbSite,
  removeLbSite,
  type ApplyLbOptions,
  type ApplyLbResult,
  type LbApplyState,
  type LbTransition,
} from "./apply.js";
export { waitDrained, type DrainResult } from "./drain.js";
export { readLbSite, type LbSiteReading } from "./read.js";
export { probeLb, type LbAnswer } from "./confirm.js";
