import { isValidRelease, RELEASE_RULE } from "@cutover/protocol";
import { ApiError } from "../api/errors.js";
import type { KeptRelease } from "../fleet/kept-releases.js";

/** How many release names a refusal lists. */
const RELEASES_NAMED = 10;

/** A deploy of the app, as `rollback --to` looks for its release. */
export interface PastDeploy {
  id: string;
  release: string;
  artifactSha256: string | null;
}

/** The deploy `rollback --to` repeats: its spec and artifact are the ones the release went live with. */
export interface RollbackTarget {
  release: string;
  deploymentId: string;
  artifactSha256: string | null;
}

/**
 * The newest deploy of `release` that went live on at least one host, or a
 * refusal: an invalid name (400), a release never deployed for the app, or
 * deployed but live nowhere (404). `deploys` are the app's deploys, newest
 * first; `wentLive(id)` says whether one of that deploy's hosts succeeded.
 */
export function findRollbackTarget(input: { app: string; release: string; deploys: PastDeploy[]; wentLive: (deploymentId: string) => boolean }): RollbackTarget {
  const { app, release, deploys } = input;
  if (!isValidRelease(release)) throw new ApiError(400, "ERR_BAD_REQUEST", `the release to roll back to must be ${RELEASE_RULE}`);
  const candidates = deploys.filter((d) => d.release === release);
  const live = candidates.find((d) => input.wentLive(d.id));
  if (live) return { release, deploymentId: live.id, artifactSha256: live.artifactSha256 };
  if (candidates.length > 0) {
    throw new ApiError(404, "ERR_RELEASE_UNKNOWN", `${release} was deployed for ${app} but never went live on any host: there is nothing to roll back to; nothing was changed`);
  }
  const known = [...new Set(deploys.map((d) => d.release))];
  const named = known.length === 0 ? "none" : `${known.slice(0, RELEASES_NAMED).join(", ")}${known.length > RELEASES_NAMED ? ", …" : ""}`;
  throw new ApiError(404, "ERR_RELEASE_UNKNOWN", `${release} was never deployed for ${app} (releases deployed, newest first: ${named}); nothing was changed (\`cutover releases ${app}\` shows what each host keeps)`);
}

/** One selected host as `rollback --to` judges it: what its proxy serves and what it keeps (null: it has not said). */
export interface HostReleases {
  name: string;
  live: string | null;
  kept: KeptRelease[] | null;
}

/** True when the host keeps the release's tree unpacked from the artifact it went live with: it switches without a download. */
export function keeps(host: HostReleases, target: RollbackTarget): boolean {
  return host.kept?.some((k) => k.release === target.release && k.sha256 === (target.artifactSha256 ?? k.sha256)) ?? false;
}

/**
 * Whether the selected hosts can go to the target, before anything is sent:
 * refused when it is live on every one of them already (409), or when some do
 * not keep it and the coordinator cannot supply its artifact (412, naming
 * them). Otherwise the hosts that will download the artifact (none for an app
 * without one: its command is on the host).
 */
export function checkRollbackHosts(input: { app: string; target: RollbackTarget; hosts: HostReleases[]; artifactAvailable: boolean }): { fetching: string[] } {
  const { app, target, hosts } = input;
  if (hosts.length > 0 && hosts.every((h) => h.live === target.release)) {
    throw new ApiError(409, "ERR_ALREADY_LIVE", `${target.release} is already live on every host of ${app} (${hosts.map((h) => h.name).join(", ")}); nothing was changed`);
  }
  if (target.artifactSha256 === null) return { fetching: [] };
  // A host already serving the release needs nothing (its agent answers "already live").
  const missing = hosts.filter((h) => h.live !== target.release && !keeps(h, target));
  if (missing.length > 0 && !input.artifactAvailable) {
    const lines = missing.map((h) => `${h.name}: ${h.kept === null ? "has not reported which releases it keeps" : `does not keep ${target.release}`}`);
    throw new ApiError(
      412,
      "ERR_RELEASE_NOT_KEPT",
      `${missing.length} host(s) cannot switch to ${target.release} and the coordinator no longer has its artifact (sha256 ${target.artifactSha256.slice(0, 12)}…); nothing was changed:\n  ${lines.join("\n  ")}\n(deploy ${target.release} again with \`cutover deploy SPEC --release ${target.release}\`)`,
    );
  }
  return { fetching: missing.map((h) => h.name) };
}
