/** Response header naming the backend (`address:port`) that served a request through the LB. */
export const LB_BACKEND_HEADER = "X-Cutover-Backend";
/** Response header carrying the revision (lbRevision) of the LB config that routed the request. */
export const LB_REVISION_HEADER = "X-Cutover-Lb-Revision";
/** Idle connections each worker keeps to each upstream group, so requests skip the TCP handshake. */
export const LB_UPSTREAM_KEEPALIVE = 32;
