import test from "ava";
import { UPGRADES_ITSELF } from "@cutover/protocol";
import type { CountOrPercent } from "@cutover/spec";
import { parseBatch } from "../api/agents.js";
import type { HostRecord } from "../store/hosts.js";
import { planUpgrade, UpgradeRefused } from "./agent-upgrade.js";

const host = (name: string, agentVersion: string, capabilities = [UPGRADES_ITSELF]) => ({ id: name, name, agentVersion, capabilities, labels: {} }) as unknown as HostRecord;
const names = (batches: HostRecord[][]) => batches.map((b) => b.map((h) => h.name));
const plan = (hosts: HostRecord[], options: { version: string; batch?: CountOrPercent; allowDowngrade?: boolean; reachable?: (h: HostRecord) => boolean }) =>
  planUpgrade(hosts, { batch: { kind: "count", count: 1 }, allowDowngrade: false, reachable: () => true, ...options });

test("hosts are upgraded in batches by name; those on the version already are left out", (t) => {
  const hosts = [host("web-3", "0.1.0"), host("web-1", "0.1.0"), host("web-2", "0.2.0"), host("web-4", "0.1.0")];
  const one = plan(hosts, { version: "0.2.0" });
  t.deepEqual(names(one.batches), [["web-1"], ["web-3"], ["web-4"]]);
  t.deepEqual(one.unchanged.map((h) => h.name), ["web-2"]);
  t.deepEqual(names(plan(hosts, { version: "0.2.0", batch: { kind: "count", count: 2 } }).batches), [["web-1", "web-3"], ["web-4"]]);
  t.deepEqual(names(plan(hosts, { version: "0.2.0", batch: { kind: "percent", percent: 50 } }).batches), [["web-1", "web-3"], ["web-4"]]);
  t.deepEqual(names(plan(hosts, { version: "0.2.0", batch: { kind: "percent", percent: 10 } }).batches), [["web-1"], ["web-3"], ["web-4"]], "10% of 3 is still one host");
});

const refusedWith = test.macro({
  exec(t, run: () => unknown, code: string, message: RegExp) {
    const error = t.throws(run, { instanceOf: UpgradeRefused });
    t.is(error?.code as string | undefined, code);
    t.regex(error?.message ?? "", message);
  },
  title: (title) => title ?? "",
});

test("a downgrade needs allowDowngrade", refusedWith, () => plan([host("web-1", "0.2.0")], { version: "0.1.0" }), "ERR_UPGRADE_DOWNGRADE", /the bundle is 0\.1\.0, older than what web-1 \(0\.2\.0\) run: pass --allow-downgrade/);
test("allowDowngrade takes it", (t) => {
  t.deepEqual(names(plan([host("web-1", "0.2.0")], { version: "0.1.0", allowDowngrade: true }).batches), [["web-1"]]);
});
test("an unreachable host refuses the whole upgrade", refusedWith, () => plan([host("web-1", "0.1.0"), host("web-2", "0.1.0")], { version: "0.2.0", reachable: (h) => h.name !== "web-2" }), "ERR_UPGRADE_UNREACHABLE", /^web-2 is unreachable: .*--hosts; nothing was changed$/);
test("an agent without agent.upgrade refuses it and says to run install.sh", refusedWith, () => plan([host("web-1", "0.1.0", ["ping"])], { version: "0.2.0" }), "ERR_UPGRADE_UNSUPPORTED", /web-1 \(0\.1\.0\) cannot upgrade itself .*running install\.sh again/);
test("an unchanged host needs no capability and no session", (t) => {
  const result = plan([host("web-1", "0.2.0", [])], { version: "0.2.0", reachable: () => false });
  t.deepEqual(names(result.batches), []);
  t.deepEqual(result.unchanged.map((h) => h.name), ["web-1"]);
});

test("--batch is a host count or a percent", (t) => {
  t.deepEqual(parseBatch("1"), { kind: "count", count: 1 });
  t.deepEqual(parseBatch("25%"), { kind: "percent", percent: 25 });
  for (const bad of ["0", "-1", "0%", "101%", "two", "1.5", ""]) t.throws(() => parseBatch(bad), { message: /batch/ }, bad);
});
