import test from "ava";
import { parseSpec, type AppSpec } from "@cutover/spec";
import { deployOrder, hostPlans, matchesSelector, numberedHosts, planBatches, planOutcome } from "./plan.js";

test("a selector matches hosts carrying all its labels", (t) => {
  t.true(matchesSelector({ role: "geoip", zone: "a" }, { role: "geoip" }));
  t.false(matchesSelector({ role: "geoip" }, { role: "geoip", zone: "a" }));
  t.false(matchesSelector({ role: "lb" }, { role: "geoip" }));
});

test("batches split hosts by count or percent, the last one shorter", (t) => {
  const hosts = ["a", "b", "c", "d", "e"];
  t.deepEqual(planBatches(hosts, { kind: "count", count: 2 }), [["a", "b"], ["c", "d"], ["e"]]);
  t.deepEqual(planBatches(hosts, { kind: "percent", percent: 50 }), [["a", "b", "c"], ["d", "e"]]);
  t.deepEqual(planBatches(hosts, { kind: "percent", percent: 100 }), [hosts]);
  t.deepEqual(planBatches(["a"], { kind: "percent", percent: 10 }), [["a"]]);
  t.deepEqual(planBatches([], { kind: "count", count: 3 }), []);
});

/** A minimal valid spec for the strategy given as YAML lines under `strategy:`. */
function specWith(strategy: string[], extra: string[] = []): AppSpec {
  return parseSpec(
    ["app: geoip", "run:", "  command: [node, server.js]", "  user: nobody", "ports: { blue: 7001, green: 7002 }", "proxy: { listen: 80 }", "health:", "  http: { path: /health_check }", "hosts: { role: geoip }", ...extra, "strategy:", ...strategy.map((l) => `  ${l}`)].join("\n"),
    { file: "app.yml", baseDir: "/" },
  );
}

const LB = ["lb: { hosts: { role: lb }, listen: 8080 }"];
const FIVE = ["a", "b", "c", "d", "e"];

test("a deploy's order: batches of strategy.batch, a canary's canaries first, fleet-bluegreen's idle group, every host first behind a new LB", (t) => {
  t.deepEqual(deployOrder(specWith(["type: bluegreen", "batch: 2"]), FIVE, { firstBehindLb: false }), { shape: "bluegreen", batches: [["a", "b"], ["c", "d"], ["e"]] });
  t.deepEqual(deployOrder(specWith(["type: rolling", "batch: 50%"], LB), FIVE, { firstBehindLb: false }), { shape: "rolling", batches: [["a", "b", "c"], ["d", "e"]] });
  t.deepEqual(deployOrder(specWith(["type: canary", "batch: 3", "canary: { hosts: 1, weight: 10 }"], LB), FIVE, { firstBehindLb: false }), {
    shape: "canary",
    batches: [["a"], ["b", "c", "d"], ["e"]],
  });
  const fleet = specWith(["type: fleet-bluegreen", "batch: 2", "groups: { label: group, blue: b, green: g }"], LB);
  t.deepEqual(deployOrder(fleet, FIVE, { firstBehindLb: false, idleHosts: ["b", "d", "e"] }), { shape: "fleet-bluegreen", batches: [["b", "d"], ["e"]] });
  t.deepEqual(deployOrder(specWith(["type: canary", "batch: 2", "canary: { hosts: 1, weight: 10 }"], LB), FIVE, { firstBehindLb: true }), {
    shape: "first-behind-lb",
    batches: [["a", "b"], ["c", "d"], ["e"]],
  });
});

test("numbered hosts carry their 1-based batch, as the deployment record lists them", (t) => {
  const order = deployOrder(specWith(["type: canary", "batch: 2", "canary: { hosts: 2, weight: 10 }"], LB), FIVE.map((name) => ({ name })), { firstBehindLb: false });
  t.deepEqual(numberedHosts(order), [
    { name: "a", batch: 1 },
    { name: "b", batch: 1 },
    { name: "c", batch: 2 },
    { name: "d", batch: 2 },
    { name: "e", batch: 3 },
  ]);
});

const live = (release: string, color = "blue") => [
  { app: "geoip", live: true, release, color },
  { app: "geoip", live: false, release: "v0", color: color === "blue" ? "green" : "blue" },
];

test("each host's plan: its live color and release, and whether the deploy starts the release there", (t) => {
  const order = {
    shape: "bluegreen" as const,
    batches: [
      [
        { name: "web-1", instances: live("v1") },
        { name: "web-2", instances: live("v2", "green") },
      ],
      [{ name: "web-3", instances: [{ app: "other", live: true, release: "v2", color: "blue" }] }],
    ],
  };
  t.deepEqual(hostPlans("geoip", "v2", order), [
    { name: "web-1", batch: 1, liveColor: "blue", release: { from: "v1", to: "v2" }, action: "deploy" },
    { name: "web-2", batch: 1, liveColor: "green", release: { from: "v2", to: "v2" }, action: "none" },
    { name: "web-3", batch: 2, liveColor: null, release: { from: null, to: "v2" }, action: "deploy" },
  ]);
});

test("the plan's outcome: refused wins, then any host or spec change, else no change", (t) => {
  const same = hostPlans("geoip", "v2", { shape: "bluegreen", batches: [[{ name: "web-1", instances: live("v2") }]] });
  const newer = hostPlans("geoip", "v3", { shape: "bluegreen", batches: [[{ name: "web-1", instances: live("v2") }]] });
  t.is(planOutcome(same, false, false), "no-change");
  t.is(planOutcome(same, true, false), "change", "a spec change alone is a change: the app's spec would be replaced");
  t.is(planOutcome(newer, false, false), "change");
  t.is(planOutcome(same, false, true), "refused");
  t.is(planOutcome(newer, true, true), "refused");
});
