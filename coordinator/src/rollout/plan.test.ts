import test from "ava";
import { matchesSelector, planBatches } from "./plan.js";

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
