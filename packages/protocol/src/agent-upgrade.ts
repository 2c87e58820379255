/** The capability an agent announces in Hello when it carries out UpgradeAgent (`cutover agents upgrade`). */
export const UPGRADES_ITSELF = "agent.upgrade";

/**
 * What the coordinator signs for an agent bundle: this context and the bundle's sha256 (hex).
 * install.sh builds the same bytes to verify a bundle, and so does an agent that upgrades itself.
 */
export const BUNDLE_SIGNATURE_CONTEXT = "cutover.v1.agent-bundle";

export function bundleSignedText(sha256Hex: string): string {
  return `${BUNDLE_SIGNATURE_CONTEXT}:${sha256Hex}`;
}

/** A dotted version, "1.2.3" or "1.2.3-rc.1"; anything else is refused. */
const VERSION_PATTERN = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/;

/**
 * Compares two agent versions as semver does (a pre-release sorts before its release;
 * pre-release parts compare numerically when both are numbers). Throws on a malformed version.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  const [pa, pb] = [parseVersion(a), parseVersion(b)];
  for (let i = 0; i < 3; i++) {
    if (pa.core[i]! !== pb.core[i]!) return pa.core[i]! < pb.core[i]! ? -1 : 1;
  }
  if (pa.pre.length === 0 || pb.pre.length === 0) return pa.pre.length === pb.pre.length ? 0 : pa.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(pa.pre.length, pb.pre.length); i++) {
    const [x, y] = [pa.pre[i], pb.pre[i]];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const [nx, ny] = [/^\d+$/.test(x), /^\d+$/.test(y)];
    if (nx && ny) return Number(x) < Number(y) ? -1 : 1;
    if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

export function isValidVersion(version: string): boolean {
  return VERSION_PATTERN.test(version);
}

function parseVersion(version: string): { core: number[]; pre: string[] } {
  const match = VERSION_PATTERN.exec(version);
  if (!match) throw new Error(`"${version}" is not a version (like 1.2.3 or 1.2.3-rc.1)`);
  return { core: [Number(match[1]), Number(match[2]), Number(match[3])], pre: match[4] ? match[4].split(".") : [] };
}

/** The Event kind an agent sends at its first session after its wrapper rolled an upgrade back; the message says why. */
export const UPGRADE_ROLLED_BACK_EVENT = "agent.upgrade.rolled-back";

/** The exit code of an agent that replaced its own file: install.sh's wrapper starts it again. */
export const EXIT_UPGRADE = 75;
