import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, openSync, readSync, closeSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Db } from "./database.js";

/** Largest release archive the coordinator accepts. */
export const MAX_ARTIFACT_BYTES = 1024 * 1024 * 1024;

export class ArtifactError extends Error {
  constructor(readonly code: "ERR_ARTIFACT_TOO_LARGE" | "ERR_ARTIFACT_HASH_MISMATCH" | "ERR_ARTIFACT_UNKNOWN", message: string) {
    super(message);
  }
}

export interface ArtifactRecord {
  sha256: string;
  size: number;
}

/** Release archives by content hash, in DATA_DIR/artifacts/<sha256>.tar.gz. */
export class ArtifactStore {
  private readonly dir: string;
  constructor(private readonly db: Db, dataDir: string, private readonly now: () => number = Date.now) {
    this.dir = join(dataDir, "artifacts");
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  get(sha256: string): ArtifactRecord | undefined {
    const row = this.db.prepare("SELECT sha256, size FROM artifacts WHERE sha256 = ?").get(sha256) as ArtifactRecord | undefined;
    return row && existsSync(this.path(sha256)) ? row : undefined;
  }

  path(sha256: string): string {
    return join(this.dir, `${sha256}.tar.gz`);
  }

  /** Streams an upload to disk, checking its size as it goes and its hash at the end. */
  async put(sha256: string, body: Readable, maxBytes = MAX_ARTIFACT_BYTES): Promise<ArtifactRecord> {
    const temp = join(this.dir, `.upload-${sha256}-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const hash = createHash("sha256");
    let size = 0;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > maxBytes) throw new ArtifactError("ERR_ARTIFACT_TOO_LARGE", `artifact is over the ${maxBytes}-byte limit`);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(temp, { mode: 0o600 }),
      );
      const actual = hash.digest("hex");
      if (actual !== sha256) throw new ArtifactError("ERR_ARTIFACT_HASH_MISMATCH", `upload hashes to ${actual}, not ${sha256}`);
      renameSync(temp, this.path(sha256));
    } finally {
      rmSync(temp, { force: true });
    }
    this.db.prepare("INSERT OR REPLACE INTO artifacts (sha256, size, created_at) VALUES (?, ?, ?)").run(sha256, size, this.now());
    return { sha256, size };
  }

  /** Reads `length` bytes at `offset` (for ArtifactChunk). */
  read(sha256: string, offset: number, length: number): Buffer {
    const fd = openSync(this.path(sha256), "r");
    try {
      const buffer = Buffer.alloc(length);
      const read = readSync(fd, buffer, 0, length, offset);
      return buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  }
}
