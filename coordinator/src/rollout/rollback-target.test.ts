import test from "ava";
import { ApiError } from "../api/errors.js";
import { KeptReleases } from "../fleet/kept-releases.js";
import { checkRollbackHosts, findRollbackTarget, keeps, type HostReleases, type PastDeploy, type RollbackTarget } from "./rollback-target.js";

const SHA_A = "a".repeat(64);
const SHA_B = "b".repeat(64);

/** The app's deploys, newest first: v3, v2 (failed everywhere), v1 twice (the newer one with another artifact). */
const DEPLOYS: PastDeploy[] = [
  { id: "d5", release: "v3", artifactSha256: SHA_A },
  { id: "d4", release: "v2", artifactSha256: SHA_A },
  { id: "d3", release: "v1", artifactSha256: SHA_B },
  { id: "d2", release: "v1", artifactSha256: SHA_A },
];
const WENT_LIVE = new Set(["d5", "d3", "d2"]);
const find = (release: string, deploys = DEPLOYS) => findRollbackTarget({ app: "geoip", release, deploys, wentLive: (id) => WENT_LIVE.has(id) });

const refused = test.macro((t, run: () => unknown, status: number, code: string, message: RegExp) => {
  const error = t.throws(run, { instanceOf: ApiError });
  t.is(error?.status, status);
  t.is(error?.code, code);
  t.regex(error?.message ?? "", message);
});

test("the target is the newest deploy of the release that went live: its spec and artifact", (t) => {
  t.deepEqual(find("v1"), { release: "v1", deploymentId: "d3", artifactSha256: SHA_B });
  t.deepEqual(find("v3"), { release: "v3", deploymentId: "d5", artifactSha256: SHA_A });
});

test("a release name that is not one is refused", refused, () => find("../v1"), 400, "ERR_BAD_REQUEST", /must be 1–64 characters/);
test("an empty release name is refused", refused, () => find(""), 400, "ERR_BAD_REQUEST", /must be/);
test("a release never deployed for the app is refused, naming those that were", refused, () => find("v9"), 404, "ERR_RELEASE_UNKNOWN", /^v9 was never deployed for geoip \(releases deployed, newest first: v3, v2, v1\); nothing was changed/);
test("an app never deployed says so", refused, () => find("v1", []), 404, "ERR_RELEASE_UNKNOWN", /releases deployed, newest first: none/);
test("a release that never went live anywhere is refused", refused, () => find("v2"), 404, "ERR_RELEASE_UNKNOWN", /v2 was deployed for geoip but never went live on any host/);

const V1: RollbackTarget = { release: "v1", deploymentId: "d3", artifactSha256: SHA_B };
const kept = (...entries: [string, string][]) => entries.map(([release, sha256]) => ({ release, sha256, unpackedAt: 0 }));
const host = (name: string, live: string | null, k: HostReleases["kept"]): HostReleases => ({ name, live, kept: k });
const check = (hosts: HostReleases[], artifactAvailable: boolean, target = V1) => checkRollbackHosts({ app: "geoip", target, hosts, artifactAvailable });

test("a host keeps a release only as unpacked from the artifact it went live with", (t) => {
  t.true(keeps(host("web-1", "v3", kept(["v3", SHA_A], ["v1", SHA_B])), V1));
  t.false(keeps(host("web-1", "v3", kept(["v1", SHA_A])), V1), "another artifact under the same name");
  t.false(keeps(host("web-1", "v3", kept(["v3", SHA_A])), V1));
  t.false(keeps(host("web-1", "v3", null), V1), "not reported");
});

test("hosts that keep the release switch without a download; the others fetch the artifact when the coordinator has it", (t) => {
  const hosts = [host("web-1", "v3", kept(["v3", SHA_A], ["v1", SHA_B])), host("web-2", "v3", kept(["v3", SHA_A])), host("web-3", "v3", null)];
  t.deepEqual(check(hosts, true), { fetching: ["web-2", "web-3"] });
  t.deepEqual(check(hosts.slice(0, 1), false), { fetching: [] }, "every host keeps it: the artifact is not needed");
});

test(
  "hosts that do not keep the release are named when the coordinator has no artifact for them",
  refused,
  () => check([host("web-1", "v3", kept(["v1", SHA_B])), host("web-2", "v3", kept(["v3", SHA_A])), host("web-3", "v3", null), host("web-4", "v1", null)], false),
  412,
  "ERR_RELEASE_NOT_KEPT",
  /^2 host\(s\) cannot switch to v1 and the coordinator no longer has its artifact \(sha256 bbbbbbbbbbbb…\); nothing was changed:\n  web-2: does not keep v1\n  web-3: has not reported which releases it keeps\n\(deploy v1 again/,
);

test("a release live on every host already is refused", refused, () => check([host("web-1", "v1", kept(["v1", SHA_B])), host("web-2", "v1", null)], true), 409, "ERR_ALREADY_LIVE", /^v1 is already live on every host of geoip \(web-1, web-2\); nothing was changed$/);

test("a release live on some hosts goes to the others (the agents already on it answer that they are)", (t) => {
  t.deepEqual(check([host("web-1", "v1", kept(["v1", SHA_B])), host("web-2", "v3", kept(["v3", SHA_A], ["v1", SHA_B]))], false), { fetching: [] });
});

test("an app without an artifact needs nothing kept: its command is on the host", (t) => {
  const noArtifact: RollbackTarget = { release: "v1", deploymentId: "d1", artifactSha256: null };
  t.deepEqual(check([host("web-1", "v2", []), host("web-2", "v2", null)], false, noArtifact), { fetching: [] });
});

test("KeptReleases keeps each host's latest report by app, drops names no release has, and forgets removed hosts", (t) => {
  const store = new KeptReleases(() => 42);
  store.report("web-1", [
    { app: "geoip", release: "v2", sha256: SHA_A, unpackedAtUnixMs: 2000 },
    { app: "geoip", release: "../x", sha256: SHA_A, unpackedAtUnixMs: 1 },
    { app: "geoip", release: "v1", sha256: "not-a-sha", unpackedAtUnixMs: 1000 },
    { app: "api", release: "1.0", sha256: SHA_B, unpackedAtUnixMs: 3000 },
  ]);
  t.deepEqual(store.of("web-1", "geoip"), { reportedAt: 42, releases: [{ release: "v2", sha256: SHA_A, unpackedAt: 2000 }, { release: "v1", sha256: "", unpackedAt: 1000 }] });
  t.deepEqual(store.of("web-1", "other"), { reportedAt: 42, releases: [] }, "reported, keeps none of it");
  t.is(store.of("web-2", "geoip"), undefined, "never reported");
  store.report("web-1", []);
  t.deepEqual(store.of("web-1", "geoip")?.releases, []);
  store.forget("web-1");
  t.is(store.of("web-1", "geoip"), undefined);
});
