import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import { waitHealthy } from "../health/index.js";
import { adoptProcess } from "./app-process.js";
import { APP_NICE_INCREMENT, belowAgent } from "./priority.js";
import { instanceRecordPath, readInstanceRecord } from "./record.js";
import { startProcess } from "./start.js";
import { appFixture, FAST_GATE } from "./test-helpers.js";

/** Niceness of every thread of `pid` (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
  });
}

test("belowAgent execs the app through nice, keeping the app's argv as the one to record", (t) => {
  const spec = { file: "node", args: ["server.js"], env: { PORT: "7001" }, cwd: "/srv/geoip", uid: 999 };
  t.deepEqual(belowAgent(spec, "/usr/bin/nice"), {
    file: "/usr/bin/nice",
    args: ["-n", String(APP_NICE_INCREMENT), "node", "server.js"],
    env: { PORT: "7001" },
    cwd: "/srv/geoip",
    uid: 999,
    shownArgv: ["node", "server.js"],
  });
});

test(`an app started below the agent runs ${APP_NICE_INCREMENT} nice levels under it, and a restarted agent adopts it by its own argv`, async (t) => {
  const f = await appFixture(t);
  const proc = await startProcess(belowAgent(f.spec), f.identity, f);
  await waitHealthy({ ...f.identity, ...FAST_GATE, isAlive: () => proc.isAlive() });
  const expected = Math.min(19, getPriority() + APP_NICE_INCREMENT);
  const niceness = threadNiceness(proc.pid);
  t.true(niceness.length > 1, "node runs several threads");
  t.deepEqual(niceness, niceness.map(() => expected), "every thread of the app, not just the first");
  const record = readInstanceRecord(instanceRecordPath(f.stateDir, f.identity.app, f.identity.color));
  t.deepEqual(record.cmdline, [f.spec.file, ...f.spec.args]);
  t.like(adoptProcess(record), { alive: true });
});
