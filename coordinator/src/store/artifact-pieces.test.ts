import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { postgresMissing, startPostgres, type PostgresCluster } from "@cutover/testkit";
import { ArtifactStore, STORED_CHUNK_BYTES } from "./artifacts.js";
import { PostgresDb } from "./postgres.js";

const missing = postgresMissing();
let cluster: PostgresCluster | undefined;
test.after.always(() => cluster?.stop());

/** A member's store: the shared database, leading under epoch 1, and a data dir of its own. */
function memberStore(t: { teardown(fn: () => void): void }, url: string): { store: ArtifactStore; dataDir: string } {
  const db = PostgresDb.connect(url);
  db.unfenced("INSERT INTO coordinator_lease (id, holder, epoch, expires_at) VALUES (1, 'test', 1, 0) ON CONFLICT (id) DO NOTHING");
  db.writeEpoch = 1;
  const dataDir = mkdtempSync(join(tmpdir(), "cutover-artifacts-"));
  t.teardown(() => {
    db.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { store: new ArtifactStore(db, dataDir, { shared: true }), dataDir };
}

if (missing) {
  test.skip(`artifacts in a shared store: skipped, ${missing}`, () => {});
} else {
  test("an artifact uploaded to one member is served by another from the store's pieces, each piece cached on its disk as it is read", async (t) => {
    cluster = await startPostgres();
    const url = cluster.createDatabase();
    const bytes = randomBytes(2 * STORED_CHUNK_BYTES + 12_345); // three pieces, the last one short
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    const a = memberStore(t, url);
    const b = memberStore(t, url);
    t.deepEqual(await a.store.put(sha256, Readable.from([bytes])), { sha256, size: bytes.length });
    t.deepEqual(b.store.get(sha256), { sha256, size: bytes.length }, "the other member knows it");
    t.false(existsSync(b.store.path(sha256)), "without the upload's file");

    // Read as agents do: ArtifactChunk-sized slices, one straddling two pieces.
    const slice = 512 * 1024;
    const parts: Buffer[] = [];
    for (let offset = 0; offset < bytes.length; offset += slice) parts.push(b.store.read(sha256, offset, slice));
    t.true(Buffer.concat(parts).equals(bytes), "the same bytes, in order");
    t.true(b.store.read(sha256, STORED_CHUNK_BYTES - 10, 20).equals(bytes.subarray(STORED_CHUNK_BYTES - 10, STORED_CHUNK_BYTES + 10)));
    t.deepEqual(readdirSync(join(b.dataDir, "artifacts", `${sha256}.pieces`)).sort(), ["0", "1", "2"], "each piece cached once read");
    t.is(b.store.read(sha256, bytes.length, slice).length, 0, "past the end: nothing");

    // Uploaded again (the same content): stored once.
    await a.store.put(sha256, Readable.from([bytes]));
    t.is(cluster.query(url, `SELECT count(*) FROM artifact_chunks WHERE sha256 = '${sha256}'`).trim(), "3");
  });
}
