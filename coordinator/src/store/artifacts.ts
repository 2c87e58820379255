import { createHash } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

/** Size of an artifact's pieces in a shared store's artifact_chunks. */
export const STORED_CHUNK_BYTES = 1024 * 1024;

/**
 * Release archives by content hash, in DATA_DIR/artifacts/<sha256>.tar.gz. On a store shared
 * by several coordinators (docs/ha.md) the archive is also kept in the store, in 1 MiB pieces,
 * so every member can serve it: a member that lacks the file serves the pieces from the store
 * and caches each one on its disk (artifacts/<sha256>.pieces/N) as it goes.
 */
export class ArtifactStore {
  private readonly dir: string;
  private readonly shared: boolean;
  constructor(private readonly db: Db, dataDir: string, options: { shared?: boolean; now?: () => number } = {}) {
    this.dir = join(dataDir, "artifacts");
    this.shared = options.shared ?? false;
    this.now = options.now ?? Date.now;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private readonly now: () => number;

  get(sha256: string): ArtifactRecord | undefined {
    const row = this.db.prepare("SELECT sha256, size FROM artifacts WHERE sha256 = ?").get(sha256) as ArtifactRecord | undefined;
    return row && (this.shared || existsSync(this.path(sha256))) ? row : undefined;
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
    this.db.transaction(() => {
      if (this.shared) this.storePieces(sha256);
      this.db
        .prepare("INSERT INTO artifacts (sha256, size, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO UPDATE SET size = excluded.size, created_at = excluded.created_at")
        .run(sha256, size, this.now());
    })();
    return { sha256, size };
  }

  /** Reads `length` bytes at `offset` (for ArtifactChunk). */
  read(sha256: string, offset: number, length: number): Buffer {
    if (!existsSync(this.path(sha256)) && this.shared) return this.readPieces(sha256, offset, length);
    return this.readFile(this.path(sha256), offset, length);
  }

  /** The archive's pieces into artifact_chunks, once (content-addressed: the same hash is the same bytes). */
  private storePieces(sha256: string): void {
    const have = this.db.prepare("SELECT count(*) AS n FROM artifact_chunks WHERE sha256 = ?").get(sha256) as { n: number };
    if (have.n > 0) return;
    const insert = this.db.prepare("INSERT INTO artifact_chunks (sha256, idx, data) VALUES (?, ?, ?)");
    const fd = openSync(this.path(sha256), "r");
    try {
      const buffer = Buffer.alloc(STORED_CHUNK_BYTES);
      for (let idx = 0; ; idx++) {
        const read = readSync(fd, buffer, 0, STORED_CHUNK_BYTES, idx * STORED_CHUNK_BYTES);
        if (read === 0) break;
        insert.run(sha256, idx, buffer.subarray(0, read));
      }
    } finally {
      closeSync(fd);
    }
  }

  /** `length` bytes at `offset` from the stored pieces, each cached on disk the first time it is read. */
  private readPieces(sha256: string, offset: number, length: number): Buffer {
    const parts: Buffer[] = [];
    for (let idx = Math.floor(offset / STORED_CHUNK_BYTES); idx * STORED_CHUNK_BYTES < offset + length; idx++) {
      const piece = this.piece(sha256, idx);
      if (!piece) break;
      const start = Math.max(0, offset - idx * STORED_CHUNK_BYTES);
      parts.push(piece.subarray(start, Math.min(piece.length, offset + length - idx * STORED_CHUNK_BYTES)));
      if (piece.length < STORED_CHUNK_BYTES) break;
    }
    return Buffer.concat(parts);
  }

  private piece(sha256: string, idx: number): Buffer | undefined {
    const cached = join(this.dir, `${sha256}.pieces`, String(idx));
    if (existsSync(cached)) return readFileSync(cached);
    const row = this.db.prepare("SELECT data FROM artifact_chunks WHERE sha256 = ? AND idx = ?").get(sha256, idx) as { data: Buffer } | undefined;
    if (!row) return undefined;
    mkdirSync(join(this.dir, `${sha256}.pieces`), { recursive: true, mode: 0o700 });
    const temp = `${cached}.${process.pid}.tmp`;
    writeFileSync(temp, row.data, { mode: 0o600 });
    renameSync(temp, cached);
    return row.data;
  }

  private readFile(path: string, offset: number, length: number): Buffer {
    const fd = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(length);
      const read = readSync(fd, buffer, 0, length, offset);
      return buffer.subarray(0, read);
    } finally {
      closeSync(fd);
    }
  }
}
