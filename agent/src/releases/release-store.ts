import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { readdir, readFile, stat } from "node:fs/promises";
import { extract } from "tar";
import { isValidName, isValidRelease, MAX_ARTIFACT_CHUNK, MAX_KEPT_RELEASES, type cutover } from "@cutover/protocol";

/** Releases kept per app (the live one, the previous one for rollback, and a few more). */
export const RELEASES_KEPT = 5;
/** Inside each release dir: the sha256 of the artifact it was unpacked from. */
const SHA_MARKER = ".cutover-sha256";

/**
 * The mode an archive entry is unpacked with: its owner and read/execute bits as
 * packed, never setuid, setgid or sticky (the agent unpacks as root) and never
 * writable by group or others (an app of another account could change this one).
 */
export function safeEntryMode(mode: number): number {
  return mode & 0o755;
}

export class ReleaseError extends Error {
  constructor(readonly code: "ERR_RELEASE_NAME" | "ERR_ARTIFACT_FETCH" | "ERR_ARTIFACT_HASH_MISMATCH" | "ERR_ARTIFACT_UNPACK", message: string) {
    super(message);
  }
}

/** Fetches one piece of an artifact (over the coordinator session). */
export type ChunkSource = (sha256: string, offset: number, length: number) => Promise<{ data: Uint8Array; totalSize: number; error: string }>;

/**
 * Release trees under STATE/releases/<app>/<release>/: fetched by sha256 over
 * the coordinator session, verified, unpacked so that nothing lands outside
 * the release directory and no entry keeps a setuid bit or a group/other write
 * bit, and pruned to the newest RELEASES_KEPT. A tree is reused only when it
 * was unpacked from the same sha256.
 */
export class ReleaseStore {
  constructor(private readonly stateDir: string) {}

  dir(app: string, release: string): string {
    if (!isValidName(app) || !isValidRelease(release)) throw new ReleaseError("ERR_RELEASE_NAME", `invalid app or release name: ${app} ${release}`);
    return join(this.stateDir, "releases", app, release);
  }

  /** A working directory for apps without an artifact (their command is already on the host). */
  scratchDir(app: string): string {
    const dir = join(this.stateDir, "apps", app, "work");
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /**
   * Ensures the release tree of this artifact exists: kept when its recorded sha256 is
   * this one, otherwise (absent, another artifact under the same release name, a dir
   * not made by the agent) fetched and unpacked afresh in its place.
   */
  async ensure(app: string, release: string, sha256: string, fetchChunk: ChunkSource): Promise<string> {
    const target = this.dir(app, release);
    if (recordedSha256(target) === sha256) return target;
    const appDir = join(this.stateDir, "releases", app);
    mkdirSync(appDir, { recursive: true, mode: 0o755 });
    const archive = join(appDir, `.download-${release}.tar.gz`);
    const staging = join(appDir, `.unpack-${release}`);
    rmSync(staging, { recursive: true, force: true });
    try {
      await this.download(sha256, archive, fetchChunk);
      mkdirSync(staging, { recursive: true, mode: 0o755 });
      await extract({
        file: archive,
        cwd: staging,
        strict: true,
        preservePaths: false,
        preserveOwner: false,
        // Parent dirs the archive does not list, and entries without a mode.
        dmode: 0o755,
        fmode: 0o644,
        // Runs before node-tar's own entry handler (registered first), so each file and
        // dir is created with the safe mode: there is no moment with a setuid bit on disk.
        onReadEntry: (entry) => {
          if (typeof entry.mode === "number") entry.mode = safeEntryMode(entry.mode);
        },
      }).catch((error: Error) => {
        throw new ReleaseError("ERR_ARTIFACT_UNPACK", `cannot unpack the artifact: ${error.message}`);
      });
      const stream = createWriteStream(join(staging, SHA_MARKER), { mode: 0o644 });
      stream.end(`${sha256}\n`);
      await once(stream, "close");
      rmSync(target, { recursive: true, force: true });
      renameSync(staging, target);
    } finally {
      rmSync(archive, { force: true });
      rmSync(staging, { recursive: true, force: true });
    }
    return target;
  }

  private async download(sha256: string, path: string, fetchChunk: ChunkSource): Promise<void> {
    const hash = createHash("sha256");
    const out = createWriteStream(path, { mode: 0o600 });
    let offset = 0;
    let total = Infinity;
    try {
      while (offset < total) {
        const chunk = await fetchChunk(sha256, offset, MAX_ARTIFACT_CHUNK).catch((error: Error) => {
          throw new ReleaseError("ERR_ARTIFACT_FETCH", `cannot fetch artifact ${sha256.slice(0, 12)}: ${error.message}`);
        });
        if (chunk.error) throw new ReleaseError("ERR_ARTIFACT_FETCH", chunk.error);
        total = chunk.totalSize;
        if (chunk.data.length === 0 && offset < total) throw new ReleaseError("ERR_ARTIFACT_FETCH", "the coordinator sent an empty chunk");
        hash.update(chunk.data);
        if (!out.write(chunk.data)) await once(out, "drain");
        offset += chunk.data.length;
      }
    } finally {
      out.end();
      await once(out, "close");
    }
    const actual = hash.digest("hex");
    if (actual !== sha256) throw new ReleaseError("ERR_ARTIFACT_HASH_MISMATCH", `artifact hashes to ${actual}, not ${sha256}`);
  }

  /** Removes every unpacked release of an app (its scratch dir is under its state, removed with it); true when there were any. */
  removeAll(app: string): boolean {
    if (!isValidName(app)) throw new ReleaseError("ERR_RELEASE_NAME", `invalid app name: ${app}`);
    const appDir = join(this.stateDir, "releases", app);
    const existed = existsSync(appDir);
    rmSync(appDir, { recursive: true, force: true });
    return existed;
  }

  /** Removes all but the newest RELEASES_KEPT releases of an app, never one in `keep`. */
  prune(app: string, keep: string[]): void {
    const appDir = join(this.stateDir, "releases", app);
    if (!existsSync(appDir)) return;
    const releases = readdirSync(appDir)
      .filter((name) => !name.startsWith("."))
      .map((name) => ({ name, mtime: statSync(join(appDir, name)).mtimeMs }))
      .sort((a, b) => b.mtime - a.mtime);
    for (const old of releases.slice(RELEASES_KEPT)) {
      if (!keep.includes(old.name)) rmSync(join(appDir, old.name), { recursive: true, force: true });
    }
  }
}

/**
 * Every release tree under STATE/releases, newest first per app, apps by name
 * (at most MAX_KEPT_RELEASES): what the heartbeat reports (Heartbeat.kept_releases). Read with async fs calls
 * (it runs while the session is open); anything that is not a release tree the
 * agent could have made (a dot entry, an invalid name, a file) is left out.
 */
export async function keptReleases(stateDir: string): Promise<cutover.v1.KeptRelease.$Properties[]> {
  const root = join(stateDir, "releases");
  const apps = (await readdir(root, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory() && isValidName(e.name)).map((e) => e.name).sort();
  const kept: cutover.v1.KeptRelease.$Properties[] = [];
  for (const app of apps) {
    const entries = await readdir(join(root, app), { withFileTypes: true }).catch(() => []);
    const trees = await Promise.all(
      entries
        .filter((e) => e.isDirectory() && isValidRelease(e.name))
        .map(async (e) => {
          const dir = join(root, app, e.name);
          const [info, sha256] = await Promise.all([stat(dir).catch(() => undefined), readFile(join(dir, SHA_MARKER), "utf8").then((text) => text.trim(), () => "")]);
          return info && { app, release: e.name, sha256, unpackedAtUnixMs: Math.floor(info.mtimeMs) };
        }),
    );
    kept.push(...trees.filter((r) => r !== undefined).sort((a, b) => b.unpackedAtUnixMs - a.unpackedAtUnixMs || a.release.localeCompare(b.release)));
  }
  return kept.slice(0, MAX_KEPT_RELEASES);
}

/** The sha256 a release dir says it was unpacked from; undefined when it says nothing readable. */
function recordedSha256(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, SHA_MARKER), "utf8").trim();
  } catch {
    return undefined;
  }
}
