import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lastUpstream } from "./confirm.js";
import { listConfFiles, readSince, withCandidates } from "./runner.js";

test("candidates replace, remove and add files in nginx's include order", (t) => {
  const files = ["/s/a.conf", "/s/b.conf", "/s/c.conf"];
  const candidates = new Map<string, string | null>([
    ["/s/b.conf", "/s/b.conf.candidate"],
    ["/s/c.conf", null],
    ["/s/d.conf", "/s/d.conf.candidate"],
    ["/other/e.conf", "/other/e.conf.candidate"],
  ]);
  t.deepEqual(withCandidates("/s", files, candidates), ["/s/a.conf", "/s/b.conf.candidate", "/s/d.conf.candidate"]);
});

test("listConfFiles sees *.conf only, sorted; candidates and temp files are not included", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-list-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ["b.conf", "a.conf", "a.conf.candidate", "a.conf.tmp-123", "notes.txt"]) writeFileSync(join(dir, name), "");
  t.deepEqual(listConfFiles(dir), [join(dir, "a.conf"), join(dir, "b.conf")]);
  t.deepEqual(listConfFiles(join(dir, "missing")), []);
});

test("readSince returns only what the log gained", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-log-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = join(dir, "error.log");
  writeFileSync(log, "old line\n");
  writeFileSync(log, "old line\n[emerg] new\n");
  t.is(readSince(log, 9), "[emerg] new\n");
  t.is(readSince(log, 100), "");
  t.is(readSince(join(dir, "none"), 0), "");
});

test("the upstream that answered is the last one nginx lists", (t) => {
  t.is(lastUpstream("127.0.0.11:7002"), "127.0.0.11:7002");
  t.is(lastUpstream("127.0.0.11:7001, 127.0.0.11:7002"), "127.0.0.11:7002");
  t.is(lastUpstream("127.0.0.11:7001 : [::1]:7002"), "[::1]:7002");
  t.is(lastUpstream(undefined), null);
});
