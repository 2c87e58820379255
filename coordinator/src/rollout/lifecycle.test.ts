// Host and app lifecycle, the pure parts: cordoned backends at the load balancer
// (withCordoned), and who an app removal reaches and when it is refused.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REMOVES_APPS } from "@cutover/protocol";
import { parseSpec } from "@cutover/spec";
import type { LbState } from "../store/apps.js";
import { openDatabase } from "../store/database.js";
import { HostStore, type HostRecord } from "../store/hosts.js";
import { lastBackendRefusal } from "./cordon.js";
import { withCordoned } from "./lb-plan.js";
import { removalRefusal, removalTargets } from "./remove-app.js";

const backend = (host: string, state: "up" | "drain" | "down" = "up") => ({ host, address: `10.0.0.${host.slice(-1)}`, port: 80, weight: 100, state, group: "stable" as const });
const upstream = (...backends: ReturnType<typeof backend>[]): LbState => ({ listenPort: 8090, backends });

test("withCordoned: a cordoned backend drains whatever the strategy asks; others are as asked", (t) => {
  const next = upstream(backend("web-1"), backend("web-2"), backend("web-3"));
  t.deepEqual(withCordoned(next, null, new Set(["web-2"])).backends.map((b) => [b.host, b.state]), [["web-1", "up"], ["web-2", "drain"], ["web-3", "up"]]);
  t.is(withCordoned(next, null, new Set()), next, "no cordon: the upstream as asked");
});

test("withCordoned: a cordoned backend a deploy left out of the upstream is kept there, drained, so uncordon finds it; one down stays down", (t) => {
  const previous = upstream(backend("web-1"), backend("web-2", "drain"), backend("web-3", "down"));
  const next = upstream(backend("web-1"));
  t.deepEqual(withCordoned(next, previous, new Set(["web-2", "web-3"])).backends.map((b) => [b.host, b.state]), [["web-1", "up"], ["web-2", "drain"], ["web-3", "down"]]);
  t.deepEqual(withCordoned(next, previous, new Set(["web-1"])).backends.map((b) => [b.host, b.state]), [["web-1", "drain"]], "an uncordoned host left out stays out");
});

test("lastBackendRefusal: cordoning the only host a load balancer still sends users to is refused naming the app; with another up, not", (t) => {
  const geoip = { app: "geoip", lb: upstream(backend("web-1"), backend("web-2", "drain")) };
  const api = { app: "api", lb: upstream(backend("web-1"), backend("web-3")) };
  const refusal = lastBackendRefusal("web-1", [geoip, api]);
  t.like(refusal, { status: 409, code: "ERR_LAST_BACKEND" });
  t.regex(refusal!.message, /web-1 is the last host geoip's load balancer sends users to/);
  t.is(lastBackendRefusal("web-3", [geoip, api]), undefined);
  t.is(lastBackendRefusal("web-2", [geoip]), undefined, "a host already drained takes nobody away");
});

test("HostStore: cordon keeps the first who/why/when until uncordon; a fresh store has no cordon", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-cordon-"));
  const db = openDatabase(dir);
  t.teardown(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let now = 1_700_000_000_000;
  const hosts = new HostStore(db, () => now);
  const host = hosts.enroll("web-2", new Uint8Array(32).fill(2), { labels: { role: "geoip" }, address: "10.0.0.2" });
  t.is(host.cordon, null);
  t.deepEqual(hosts.cordon(host.id, "ops", "disk swap"), { by: "ops", reason: "disk swap", at: 1_700_000_000_000 });
  now += 1000;
  t.deepEqual(hosts.cordon(host.id, "ci", "again"), { by: "ops", reason: "disk swap", at: 1_700_000_000_000 }, "cordoning again keeps the first cordon");
  hosts.uncordon(host.id);
  t.is(hosts.byName("web-2")!.cordon, null);
});

const SPEC = parseSpec(
  ["app: geoip", "run:", "  command: [node, server.js]", "  user: nobody", "ports: { blue: 7001, green: 7002 }", "proxy: { listen: 80 }", "health:", "  http: { path: /health_check }", "hosts: { role: geoip }", "lb: { hosts: { role: lb }, listen: 8090 }", "strategy:", "  type: bluegreen"].join("\n"),
  { file: "app.yml", baseDir: "/" },
);

function hostRecord(name: string, labels: Record<string, string>, extra: Partial<HostRecord> = {}): HostRecord {
  return {
    id: name, name, publicKey: Buffer.alloc(32), address: "", hostname: name, labels, pendingLabels: null, pendingAddress: null,
    capabilities: [REMOVES_APPS], agentVersion: "0.1.0", resources: null, instances: [], enrolledAt: 0, lastSeen: 0, cordon: null, ...extra,
  };
}

const FLEET = [
  hostRecord("lb-1", { role: "lb" }),
  hostRecord("other", { role: "api" }),
  hostRecord("stray", { role: "api" }, { instances: [{ app: "geoip", color: "blue", release: "v1", port: 7001, state: "healthy", pid: 1, live: true, rssBytes: 0 }] }),
  hostRecord("web-1", { role: "geoip" }),
  hostRecord("web-2", { role: "geoip" }, { cordon: { by: "ops", reason: "", at: 0 } }),
];

test("removalTargets: the hosts the spec selects (cordoned too), any host still running it, and its load balancers", (t) => {
  t.deepEqual(removalTargets(FLEET, "geoip", SPEC).map((r) => [r.host.name, r.role]), [["lb-1", "lb"], ["stray", "app"], ["web-1", "app"], ["web-2", "app"]]);
  t.deepEqual(removalTargets(FLEET, "geoip", undefined).map((r) => [r.host.name, r.role]), [["stray", "app"]], "no spec left: whoever still reports it");
});

test("removalRefusal: an unreachable host, or an agent without apps.remove, refuses the removal naming them; else none", (t) => {
  const targets = removalTargets(FLEET, "geoip", SPEC);
  t.is(removalRefusal("geoip", targets, () => true), undefined);
  const offline = removalRefusal("geoip", targets, (h) => h.name !== "web-1");
  t.like(offline, { status: 409, code: "ERR_HOSTS_UNREACHABLE" });
  t.regex(offline!.message, /web-1 is unreachable.*nothing was removed.*cutover hosts remove HOST/);
  const old = removalRefusal("geoip", targets.map((r) => (r.host.name === "lb-1" ? { ...r, host: { ...r.host, capabilities: [], agentVersion: "0.0.9" } } : r)), () => true);
  t.like(old, { status: 412, code: "ERR_AGENT_UNSUPPORTED" });
  t.regex(old!.message, /lb-1 \(agent 0\.0\.9\)/);
});
