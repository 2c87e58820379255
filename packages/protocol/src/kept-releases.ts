/** The capability an agent announces when its heartbeats list the release trees it keeps (Heartbeat.kept_releases). */
export const REPORTS_KEPT_RELEASES = "releases.kept";

/** At most this many KeptRelease entries in one heartbeat; an agent drops the rest, a coordinator ignores them. */
export const MAX_KEPT_RELEASES = 256;
