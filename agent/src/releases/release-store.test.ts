import { createHash } from "node:crypto";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { create } from "tar";
import { keptReleases, ReleaseError, ReleaseStore, safeEntryMode, type ChunkSource } from "./release-store.js";

function scratch(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A .tar.gz of `files` (path → [content, mode]) and `dirs` (path → mode), as a careless or hostile build would pack it. */
async function tarball(t: ExecutionContext, files: Record<string, [string, number]>, dirs: Record<string, number> = {}): Promise<{ bytes: Buffer; sha256: string }> {
  const work = scratch(t, "cutover-artifact-");
  for (const [path, mode] of Object.entries(dirs)) {
    mkdirSync(join(work, path), { recursive: true });
    chmodSync(join(work, path), mode);
  }
  for (const [path, [content, mode]] of Object.entries(files)) {
    writeFileSync(join(work, path), content);
    chmodSync(join(work, path), mode);
  }
  const file = join(scratch(t, "cutover-tarball-"), "a.tar.gz");
  await create({ gzip: true, file, cwd: work, portable: false }, [...Object.keys(dirs), ...Object.keys(files).filter((f) => !Object.keys(dirs).some((d) => f.startsWith(`${d}/`)))]);
  const bytes = readFileSync(file);
  return { bytes, sha256: createHash("sha256").update(bytes).digest("hex") };
}

/** Serves one artifact as the coordinator would, counting the fetches. */
function source(artifact: { bytes: Buffer; sha256: string }): ChunkSource & { fetches: number } {
  const serve = Object.assign(
    async (sha256: string, offset: number, length: number) => {
      if (offset === 0) serve.fetches++;
      if (sha256 !== artifact.sha256) return { data: new Uint8Array(), totalSize: 0, error: "unknown artifact" };
      return { data: artifact.bytes.subarray(offset, offset + length), totalSize: artifact.bytes.length, error: "" };
    },
    { fetches: 0 },
  );
  return serve;
}

const mode = (path: string) => lstatSync(path).mode & 0o7777;

test("safeEntryMode drops setuid, setgid, sticky and group/other write, keeps the rest", (t) => {
  t.is(safeEntryMode(0o4777), 0o755);
  t.is(safeEntryMode(0o2755), 0o755);
  t.is(safeEntryMode(0o1777), 0o755);
  t.is(safeEntryMode(0o666), 0o644);
  t.is(safeEntryMode(0o600), 0o600);
  t.is(safeEntryMode(0o750), 0o750);
});

test("an artifact with a setuid 0777 file, a setgid file and a world-writable sticky dir unpacks with none of it (issue 11, finding 5)", async (t) => {
  const artifact = await tarball(
    t,
    { "server.mjs": ["console.log(1)\n", 0o644], "evil-setuid": ["#!/bin/sh\nid\n", 0o4777], "group-setgid": ["x", 0o2775], "shared/drop": ["x", 0o666] },
    { shared: 0o1777 },
  );
  const store = new ReleaseStore(scratch(t, "cutover-state-"));
  const dir = await store.ensure("geoip", "v1", artifact.sha256, source(artifact));
  t.is(mode(join(dir, "evil-setuid")), 0o755, "setuid and group/other write gone, execute kept");
  t.is(mode(join(dir, "group-setgid")), 0o755);
  t.is(mode(join(dir, "shared")), 0o755, "no sticky bit, no world write");
  t.is(mode(join(dir, "shared", "drop")), 0o644);
  t.is(mode(join(dir, "server.mjs")), 0o644);
  t.is(mode(dir), 0o755);
  t.is(readFileSync(join(dir, ".cutover-sha256"), "utf8"), `${artifact.sha256}\n`);
});

test("a release dir made under the same name with other contents is not trusted: it is unpacked afresh from the artifact (issue 11, finding 5)", async (t) => {
  const artifact = await tarball(t, { "server.mjs": ["console.log('the real v1')\n", 0o644] });
  const stateDir = scratch(t, "cutover-state-");
  const planted = join(stateDir, "releases", "geoip", "v1");
  mkdirSync(planted, { recursive: true });
  writeFileSync(join(planted, "server.mjs"), "require('child_process').execSync('id > /tmp/x')\n");
  writeFileSync(join(planted, ".cutover-sha256"), `${"0".repeat(64)}\n`);
  const fetch = source(artifact);

  const dir = await new ReleaseStore(stateDir).ensure("geoip", "v1", artifact.sha256, fetch);
  t.is(dir, planted);
  t.is(fetch.fetches, 1, "the artifact was fetched");
  t.deepEqual(readdirSync(dir).sort(), [".cutover-sha256", "server.mjs"]);
  t.is(readFileSync(join(dir, "server.mjs"), "utf8"), "console.log('the real v1')\n");
  t.is(readFileSync(join(dir, ".cutover-sha256"), "utf8"), `${artifact.sha256}\n`);
});

test("a release dir with no sha256 record is replaced too", async (t) => {
  const artifact = await tarball(t, { "server.mjs": ["ok\n", 0o644] });
  const stateDir = scratch(t, "cutover-state-");
  const planted = join(stateDir, "releases", "geoip", "v1");
  mkdirSync(planted, { recursive: true });
  writeFileSync(join(planted, "server.mjs"), "planted\n");
  const dir = await new ReleaseStore(stateDir).ensure("geoip", "v1", artifact.sha256, source(artifact));
  t.is(readFileSync(join(dir, "server.mjs"), "utf8"), "ok\n");
});

test("a release dir unpacked from the same sha256 is reused without a fetch", async (t) => {
  const artifact = await tarball(t, { "server.mjs": ["ok\n", 0o644] });
  const store = new ReleaseStore(scratch(t, "cutover-state-"));
  const fetch = source(artifact);
  const first = await store.ensure("geoip", "v1", artifact.sha256, fetch);
  const second = await store.ensure("geoip", "v1", artifact.sha256, fetch);
  t.is(second, first);
  t.is(fetch.fetches, 1);
});

test("keptReleases lists each app's release trees newest first with the sha256 each was unpacked from, and nothing else under releases/", async (t) => {
  const v1 = await tarball(t, { "server.mjs": ["v1\n", 0o644] });
  const v2 = await tarball(t, { "server.mjs": ["v2\n", 0o644] });
  const stateDir = scratch(t, "cutover-state-");
  const store = new ReleaseStore(stateDir);
  const at = (dir: string, seconds: number) => utimesSync(dir, seconds, seconds);
  at(await store.ensure("geoip", "v1", v1.sha256, source(v1)), 1_000);
  at(await store.ensure("geoip", "v2", v2.sha256, source(v2)), 2_000);
  at(await store.ensure("api", "1.0.0", v1.sha256, source(v1)), 1_500);
  // Not release trees the agent made: a download in flight, a name no release has, a stray file, a tree without its record.
  mkdirSync(join(stateDir, "releases", "geoip", ".unpack-v3"));
  mkdirSync(join(stateDir, "releases", "geoip", "bad name"));
  writeFileSync(join(stateDir, "releases", "geoip", "notes.txt"), "x");
  mkdirSync(join(stateDir, "releases", "Bad App"));
  const planted = join(stateDir, "releases", "geoip", "v0");
  mkdirSync(planted);
  at(planted, 500);

  t.deepEqual(await keptReleases(stateDir), [
    { app: "api", release: "1.0.0", sha256: v1.sha256, unpackedAtUnixMs: 1_500_000 },
    { app: "geoip", release: "v2", sha256: v2.sha256, unpackedAtUnixMs: 2_000_000 },
    { app: "geoip", release: "v1", sha256: v1.sha256, unpackedAtUnixMs: 1_000_000 },
    { app: "geoip", release: "v0", sha256: "", unpackedAtUnixMs: 500_000 },
  ]);
});

test("keptReleases of a host that never unpacked a release is empty", async (t) => {
  t.deepEqual(await keptReleases(scratch(t, "cutover-state-")), []);
});

test("a release or app name from the network that is not one never becomes a path: ReleaseError ERR_RELEASE_NAME, nothing fetched", async (t) => {
  const artifact = await tarball(t, { "server.mjs": ["ok\n", 0o644] });
  const stateDir = scratch(t, "cutover-state-");
  const store = new ReleaseStore(stateDir);
  const fetch = source(artifact);
  for (const [app, release] of [["geoip", "../v1"], ["geoip", "v1/../../x"], ["geoip", ""], ["../etc", "v1"]] as const) {
    t.like(t.throws(() => store.dir(app, release), { instanceOf: ReleaseError }), { code: "ERR_RELEASE_NAME" }, `${app} ${release}`);
    t.like(await t.throwsAsync(store.ensure(app, release, artifact.sha256, fetch), { instanceOf: ReleaseError }), { code: "ERR_RELEASE_NAME" });
  }
  t.is(fetch.fetches, 0);
  t.deepEqual(await keptReleases(stateDir), []);
});
