import { createHash } from "node:crypto";
import { createReadStream, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { create } from "tar";
import type { ArtifactSpec } from "@cutover/spec";

export interface PackedArtifact {
  path: string;
  sha256: string;
  size: number;
  /** Removes the temp archive (a no-op for a .tar.gz given as is). */
  cleanup(): void;
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return hash.digest("hex");
}

/**
 * A directory is packed into a .tar.gz (sorted entries, fixed mtime and
 * owner, so the same tree gives the same hash); a .tar.gz is sent as is.
 */
export async function packArtifact(artifact: ArtifactSpec): Promise<PackedArtifact> {
  if (artifact.kind === "tarball") {
    return { path: artifact.path, sha256: await sha256Of(artifact.path), size: statSync(artifact.path).size, cleanup: () => {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "cutover-pack-"));
  const path = join(dir, "artifact.tar.gz");
  const entries = readdirSync(artifact.path).sort();
  await create({ gzip: { level: 6 }, file: path, cwd: artifact.path, portable: true, mtime: new Date(0), noDirRecurse: false }, entries);
  return { path, sha256: await sha256Of(path), size: statSync(path).size, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
