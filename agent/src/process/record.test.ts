import test from "ava";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProcessError } from "./errors.js";
import { rotateIfLarge } from "./log-file.js";
import { readCmdline, readProcStat } from "./proc.js";
import { instanceRecordPath, listInstanceRecords, readInstanceRecord, removeInstanceRecord, writeInstanceRecord, type InstanceRecord } from "./record.js";

const RECORD: InstanceRecord = {
  pid: 4242,
  startTime: 123456,
  cmdline: ["/usr/bin/node", "server.mjs", "--port", "7001"],
  app: "geoip",
  color: "blue",
  release: "v1.2.3",
  port: 7001,
  address: "127.0.0.9",
  logPath: "/var/log/cutover/geoip/blue.log",
  startedAtMs: 1_800_000_000_000,
};

function tempDir(t: import("ava").ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-record-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("a record is written as JSON with its format, and read back equal", async (t) => {
  const dir = tempDir(t);
  const path = await writeInstanceRecord(dir, RECORD);
  t.is(path, join(dir, "instances", "geoip", "blue.json"));
  t.deepEqual(JSON.parse(readFileSync(path, "utf8")), { format: 1, ...RECORD });
  t.deepEqual(readInstanceRecord(path), RECORD);
});

test("records that do not parse, lack a field or name a bad app are ERR_INVALID_RECORD; listing reports them apart", async (t) => {
  const dir = tempDir(t);
  await writeInstanceRecord(dir, RECORD);
  await writeInstanceRecord(dir, { ...RECORD, color: "green", pid: 4343 });
  mkdirSync(join(dir, "instances", "other"));
  writeFileSync(join(dir, "instances", "other", "blue.json"), "{not json");
  writeFileSync(join(dir, "instances", "other", "green.json"), JSON.stringify({ format: 1, ...RECORD, pid: "4242" }));
  writeFileSync(join(dir, "instances", "other", "notes.txt"), "ignored");

  const error = t.throws(() => readInstanceRecord(join(dir, "instances", "other", "green.json")));
  t.true(isProcessError(error, "ERR_INVALID_RECORD"));
  t.is(error.message, `instance record ${join(dir, "instances", "other", "green.json")} has no integer pid; delete it if no such instance runs`);

  const listing = listInstanceRecords(dir);
  t.deepEqual(listing.records.map((r) => `${r.app}/${r.color}/${r.pid}`).sort(), ["geoip/blue/4242", "geoip/green/4343"]);
  t.deepEqual(listing.invalid.map((i) => i.path).sort(), [join(dir, "instances", "other", "blue.json"), join(dir, "instances", "other", "green.json")]);
  t.deepEqual(listInstanceRecords(join(dir, "missing")), { records: [], invalid: [] });
});

test("names that could escape the state dir are refused before any path is built", (t) => {
  t.true(isProcessError(t.throws(() => instanceRecordPath("/state", "../etc", "blue")), "ERR_INVALID_NAME"));
  t.true(isProcessError(t.throws(() => instanceRecordPath("/state", "geoip", "red" as "blue")), "ERR_INVALID_NAME"));
});

test("removing a record leaves it alone when it already describes a newer process", async (t) => {
  const dir = tempDir(t);
  const path = await writeInstanceRecord(dir, { ...RECORD, pid: 5000 });
  removeInstanceRecord(dir, RECORD);
  t.true(existsSync(path));
  removeInstanceRecord(dir, { ...RECORD, pid: 5000 });
  t.false(existsSync(path));
  t.notThrows(() => removeInstanceRecord(dir, RECORD));
});

test("log rotation shifts generations and keeps `keep` of them", (t) => {
  const dir = tempDir(t);
  const log = join(dir, "blue.log");
  const rotation = { maxBytes: 10, keep: 2 };
  t.false(rotateIfLarge(log, rotation), "no file, nothing to do");
  writeFileSync(log, "short");
  t.false(rotateIfLarge(log, rotation));
  for (const generation of ["first-----", "second----", "third-----"]) {
    writeFileSync(log, generation);
    t.true(rotateIfLarge(log, rotation));
    t.false(existsSync(log));
  }
  t.is(readFileSync(`${log}.1`, "utf8"), "third-----");
  t.is(readFileSync(`${log}.2`, "utf8"), "second----");
  t.false(existsSync(`${log}.3`));
});

test("/proc readings of this very process", (t) => {
  const stat = readProcStat(process.pid);
  t.is(stat?.ppid, process.ppid);
  t.true(stat!.startTime > 0);
  const argv = readCmdline(process.pid)!;
  t.deepEqual(argv.slice(argv.length - (process.argv.length - 1)), process.argv.slice(1));
  t.is(readProcStat(2 ** 22 + 1), undefined);
  t.is(readCmdline(2 ** 22 + 1), undefined);
});
