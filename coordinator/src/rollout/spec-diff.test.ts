import test from "ava";
import { parseSpec } from "@cutover/spec";
import { formatSpecValue, renderSpecDiff, specDiff } from "./spec-diff.js";

const BASE = ["app: geoip", "run:", "  command: [node, server.js]", "  user: nobody", "ports: { blue: 7001, green: 7002 }", "proxy: { listen: 80 }", "hosts: { role: geoip }"];

const HEALTH = ["health:", "  http: { path: /healthz }"];

/** The base spec with `lines` added (a health check unless they bring one). */
function spec(lines: string[], base = BASE) {
  return parseSpec([...base, ...(lines.includes("health:") ? [] : HEALTH), ...lines].join("\n"), { file: "app.yml", baseDir: "/" });
}

test("the same spec has no changes", (t) => {
  const lines = ["health:", "  http: { path: /healthz }", "strategy: { batch: 2 }"];
  t.deepEqual(specDiff(spec(lines), spec(lines)), []);
});

test("each changed field of the parsed spec, by its dotted path, with both values", (t) => {
  const before = spec(["health:", "  http: { path: /healthz }", "  interval: 1s", "strategy: { batch: 2 }"]);
  const after = spec(["health:", "  http: { path: /ready }", "  interval: 500ms", "strategy: { batch: 50% }", "resources: { min_free_memory: 256M }"]);
  t.deepEqual(specDiff(before, after), [
    { field: "health.check.path", from: "/healthz", to: "/ready" },
    { field: "health.intervalMs", from: 1000, to: 500 },
    { field: "strategy.batch", from: { kind: "count", count: 2 }, to: { kind: "percent", percent: 50 } },
    { field: "resources.minFreeMemoryBytes", from: null, to: 256 * 1024 * 1024 },
  ]);
  t.deepEqual(renderSpecDiff(specDiff(before, after)), [
    "health.check.path: /healthz → /ready",
    "health.intervalMs: 1s → 500ms",
    "strategy.batch: 2 → 50%",
    "resources.minFreeMemoryBytes: (none) → 256 MiB",
  ]);
});

test("a field only the old spec had is listed after the new spec's, as removed; arrays and maps compare by value", (t) => {
  const before = spec(["limits: { memory: 64M }"]);
  const withEnv = spec([], [...BASE.slice(0, 4), "  env: { A: '1', B: two }", ...BASE.slice(4)]);
  t.deepEqual(renderSpecDiff(specDiff(before, withEnv)), ["run.env.A: (none) → 1", "run.env.B: (none) → two", "limits.memoryBytes: 64 MiB → (none)"]);
  const longer = spec([], BASE.map((l) => l.replace("[node, server.js]", "[node, server.js, --verbose]")));
  t.deepEqual(renderSpecDiff(specDiff(spec([]), longer)), ['run.command: ["node","server.js"] → ["node","server.js","--verbose"]']);
});

test("values read with their units", (t) => {
  t.is(formatSpecValue("strategy.keepPreviousMs", 600_000), "10m");
  t.is(formatSpecValue("health.deadlineMs", 90_000), "90s");
  t.is(formatSpecValue("health.timeoutMs", 0), "0ms");
  t.is(formatSpecValue("strategy.canary.weightPercent", 10), "10%");
  t.is(formatSpecValue("limits.cpu", 1.5), "1.5");
  t.is(formatSpecValue("run.user", null), "(none)");
});
