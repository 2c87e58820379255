// Bad specs, each with the exact issues an operator would read. The base spec
// is valid; each case breaks it in one way.
import test from "ava";
import { readFileSync } from "node:fs";
import { stringify } from "yaml";
import { parseSpec, SpecError } from "./index.js";
import { ANALYSIS_KEYS, PROMETHEUS_KEYS } from "./validate.js";
import type { SpecIssue } from "./index.js";

const FILE = "/srv/geoip/cutover.yml";
const fakeFs = (path: string): "file" | "dir" | null => ({ "/srv/geoip/dist": "dir", "/srv/geoip/app.zip": "file" })[path] as "file" | "dir" | undefined ?? null;

/** The spec as plain data, for cases to break freely. */
type Raw = any;
const BASE = {
  app: "geoip",
  run: { command: ["node", "server.js"] },
  ports: { blue: 7001, green: 7002 },
  proxy: { listen: 80 },
  health: { http: { path: "/health" } },
  hosts: { role: "geoip" },
};
const LB = { hosts: { role: "lb" }, listen: 80 };

const DURATION = 'a duration like "250ms", "1.5s", "10m", "1h" or "1m30s"';
const SIZE = 'a size like 512 (bytes), "256K", "256M", "1G" or "1T" (binary: K = 1024; KB/KiB, MB/MiB, ... mean the same)';
const PORT = "a port number 1..65535";
const COUNT_OR_PERCENT = 'a host count (integer >= 1) or a percent "1%".."100%"';
const LABEL_RULE = "key: a-z, 0-9, '.', '-', '_', '/' (≤ 63, alphanumeric at both ends); value: A-Z, a-z, 0-9, '.', '-', '_' (≤ 63)";
const RUN_SHAPE = "a mapping with command (and optionally env, env_file, user, stop_signal, stop_timeout)";

const refused = test.macro({
  exec(t, source: string | ((spec: Raw) => void), issues: SpecIssue[]) {
    let text = source as string;
    if (typeof source === "function") {
      const spec = structuredClone(BASE);
      source(spec);
      text = stringify(spec);
    }
    const error = t.throws(() => parseSpec(text, { file: FILE, exists: fakeFs }), { instanceOf: SpecError });
    t.is(error.code, "ERR_SPEC_INVALID");
    t.is(error.file, FILE);
    t.deepEqual(error.issues, issues);
  },
  title: (title) => `refuses ${title}`,
});

test("the base spec of this table is valid", (t) => {
  t.is(parseSpec(stringify(BASE), { file: FILE, exists: fakeFs }).app, "geoip");
});

// ---- missing and mistyped required fields ----

test("a spec without app", refused, (s) => delete s.app, [
  { field: "app", expected: "an app name: 1–63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit", got: "nothing" },
]);
test("an app name with capitals and a space", refused, (s) => (s.app = "Geo IP"), [
  { field: "app", expected: "an app name: 1–63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit", got: '"Geo IP"' },
]);
test("an app name that is a number", refused, (s) => (s.app = 123), [
  { field: "app", expected: "an app name: 1–63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit", got: "123" },
]);
test("an app name with '..'", refused, (s) => (s.app = "a..b"), [
  { field: "app", expected: "an app name: 1–63 characters of a-z, 0-9, '.', '-', '_', starting with a letter or digit", got: '"a..b"' },
]);
test("a spec without run", refused, (s) => delete s.run, [{ field: "run", expected: RUN_SHAPE, got: "nothing" }]);
test("an empty run", refused, "app: geoip\nrun:\nports: { blue: 7001, green: 7002 }\nproxy: { listen: 80 }\nhealth: { tcp: {} }\nhosts: { role: geoip }\n", [
  { field: "run", expected: RUN_SHAPE, got: "an empty value" },
]);
test("run without command", refused, (s) => (s.run = { user: "geoip" }), [
  { field: "run.command", expected: 'the program and its arguments as a list of strings, like ["node", "server.js"] (no shell)', got: "nothing" },
]);
test("an empty command", refused, (s) => (s.run.command = []), [
  { field: "run.command", expected: 'the program and its arguments as a list of strings, like ["node", "server.js"] (no shell)', got: "an empty list" },
]);
test("a shell command string instead of argv", refused, (s) => (s.run.command = "node server.js"), [
  { field: "run.command", expected: 'the program and its arguments as a list of strings, like ["node", "server.js"] (no shell)', got: '"node server.js"' },
]);
test("a number and a boolean in the command", refused, (s) => (s.run.command = ["node", "--port", 7001, true]), [
  { field: "run.command[2]", expected: "a string (quote numbers and booleans)", got: "7001" },
  { field: "run.command[3]", expected: "a string (quote numbers and booleans)", got: "true" },
]);
test("an empty program name", refused, (s) => (s.run.command = ["", "x"]), [{ field: "run.command[0]", expected: "a program name or path", got: '""' }]);
test("a spec without ports", refused, (s) => delete s.ports, [
  { field: "ports", expected: "a mapping with the blue and green ports, like { blue: 7001, green: 7002 }", got: "nothing" },
]);
test("a spec without ports.green", refused, (s) => delete s.ports.green, [{ field: "ports.green", expected: PORT, got: "nothing" }]);
test("a spec without proxy.listen", refused, (s) => (s.proxy = { protocol: "tcp" }), [{ field: "proxy.listen", expected: PORT, got: "nothing" }]);
test("a spec without health", refused, (s) => delete s.health, [
  { field: "health", expected: "a mapping with one check, http: { path } or tcp: {}", got: "nothing" },
]);
test("an http check without path", refused, (s) => (s.health.http = { expect_status: 204 }), [
  { field: "health.http.path", expected: 'a URL path starting with "/", without spaces', got: "nothing" },
]);
test("a spec without hosts", refused, (s) => delete s.hosts, [
  { field: "hosts", expected: "a label selector with at least one label, like { role: web }", got: "nothing" },
]);
test("an empty hosts selector, which would select every host", refused, (s) => (s.hosts = {}), [
  { field: "hosts", expected: "a label selector with at least one label, like { role: web }", got: "a mapping" },
]);
test("an empty file", refused, "# nothing yet\n", [{ field: "(root)", expected: "a YAML mapping with app, run, ports, proxy, health and hosts", got: "an empty file" }]);
test("a list at the top", refused, "- app: geoip\n", [{ field: "(root)", expected: "a YAML mapping with app, run, ports, proxy, health and hosts", got: "a list" }]);

// ---- ports ----

test("the same port for both colors", refused, (s) => (s.ports = { blue: 7001, green: 7001 }), [
  { field: "ports.green", expected: "a port different from ports.blue (7001)", got: "7001" },
]);
test("proxy.listen equal to the blue port", refused, (s) => (s.proxy.listen = 7001), [
  { field: "proxy.listen", expected: "a port other than ports.blue and ports.green (ports.blue is 7001)", got: "7001" },
]);
test("proxy.listen equal to the green port", refused, (s) => (s.proxy.listen = 7002), [
  { field: "proxy.listen", expected: "a port other than ports.blue and ports.green (ports.green is 7002)", got: "7002" },
]);
const DIRECTIVE_RULE = 'one allowed nginx directive with plain arguments, like "client_max_body_size 10m"';
test("proxy directives that would break out of the server block", refused, (s) => ((s.proxy as Record<string, unknown>).directives = ["client_max_body_size 10m", "} server {", 5]), [
  { field: "proxy.directives[1]", expected: DIRECTIVE_RULE, got: '"} server {": "}" is not an allowed directive (the list is in packages/spec/README.md)' },
  { field: "proxy.directives[2]", expected: DIRECTIVE_RULE, got: "5: not a string" },
]);
test("a proxy directive that runs Lua in nginx's workers (finding 1 of issue 11)", refused, (s) => ((s.proxy as Record<string, unknown>).directives = [`access_by_lua 'os.execute("id > /tmp/x")'`]), [
  {
    field: "proxy.directives[0]",
    expected: DIRECTIVE_RULE,
    got: `"access_by_lua 'os.execute(\\"id > /tmp/x\\")'": "access_by_lua" is not an allowed directive (the list is in packages/spec/README.md)`,
  },
]);
test("proxy directives are kept, trimmed, without their semicolon", (t) => {
  const spec = structuredClone(BASE);
  (spec.proxy as Record<string, unknown>).directives = [" client_max_body_size 10m ", "proxy_read_timeout 30s;"];
  t.deepEqual(parseSpec(stringify(spec), { file: FILE, exists: fakeFs }).proxy.directives, ["client_max_body_size 10m", "proxy_read_timeout 30s"]);
});
test("ports out of range, fractional or quoted", refused, (s) => {
  s.ports = { blue: 0, green: 70000 };
  s.proxy.listen = "80";
  s.lb = { hosts: { role: "lb" }, listen: 80.5 };
}, [
  { field: "ports.blue", expected: PORT, got: "0" },
  { field: "ports.green", expected: PORT, got: "70000" },
  { field: "proxy.listen", expected: PORT, got: '"80"' },
  { field: "lb.listen", expected: PORT, got: "80.5" },
]);
test("an unknown proxy protocol", refused, (s) => (s.proxy.protocol = "udp"), [{ field: "proxy.protocol", expected: "http or tcp", got: '"udp"' }]);

// ---- health ----

test("both an http and a tcp check", refused, (s) => (s.health.tcp = {}), [
  { field: "health", expected: "exactly one check, http: { path: /health } or tcp: {}", got: "both http and tcp" },
]);
test("a health section without a check", refused, (s) => (s.health = { interval: "1s" }), [
  { field: "health", expected: "exactly one check, http: { path: /health } or tcp: {}", got: "neither" },
]);
test("a health path without a leading slash, and a bad status", refused, (s) => (s.health.http = { path: "health check", expect_status: 700 }), [
  { field: "health.http.path", expected: 'a URL path starting with "/", without spaces', got: '"health check"' },
  { field: "health.http.expect_status", expected: "an HTTP status code 100..599", got: "700" },
]);
test("options on a tcp check", refused, (s) => (s.health = { tcp: { port: 9000 } }), [
  { field: "health.tcp.port", expected: "no keys here", got: 'unknown key "port"' },
]);
test("a healthy_threshold of 0", refused, (s) => (s.health.healthy_threshold = 0), [{ field: "health.healthy_threshold", expected: "an integer >= 1", got: "0" }]);
test("a deadline too short for the threshold", refused, (s) => Object.assign(s.health, { interval: "10s", healthy_threshold: 3, deadline: "20s" }), [
  { field: "health.deadline", expected: "at least healthy_threshold × interval (30000ms), or the health gate can never pass", got: '"20s"' },
]);

test("health.live_interval: 5s by default, apart from the gate's interval; at least 1s", (t) => {
  const parse = (health: Raw) => parseSpec(stringify({ ...BASE, health: { ...BASE.health, ...health } }), { file: FILE, exists: fakeFs }).health;
  t.like(parse({}), { intervalMs: 1_000, liveIntervalMs: 5_000 });
  t.like(parse({ interval: "100ms", live_interval: "30s" }), { intervalMs: 100, liveIntervalMs: 30_000 });
  t.like(parse({ live_interval: "1s" }), { intervalMs: 1_000, liveIntervalMs: 1_000 });
});
test("a live_interval under 1s", refused, (s) => (s.health.live_interval = "500ms"), [
  { field: "health.live_interval", expected: `${DURATION}, at least 1s`, got: '"500ms"' },
]);
test("a live_interval that is not a duration", refused, (s) => (s.health.live_interval = 5), [
  { field: "health.live_interval", expected: `${DURATION}, at least 1s`, got: "5" },
]);

// ---- durations and sizes ----

test("durations written as bare numbers, with unknown units, or out of order", refused, (s) => {
  s.run.stop_timeout = 30;
  s.health.interval = "1d";
  s.health.timeout = "0s";
  s.health.deadline = "30s1m";
  s.strategy = { keep_previous: "10 m", progress_deadline: "1000h" };
}, [
  { field: "run.stop_timeout", expected: DURATION, got: "30" },
  { field: "health.interval", expected: `${DURATION}, more than 0`, got: '"1d"' },
  { field: "health.timeout", expected: `${DURATION}, more than 0`, got: '"0s"' },
  { field: "health.deadline", expected: `${DURATION}, more than 0`, got: '"30s1m"' },
  { field: "strategy.progress_deadline", expected: `${DURATION}, more than 0`, got: '"1000h"' },
  { field: "strategy.keep_previous", expected: DURATION, got: '"10 m"' },
]);
test("malformed sizes and load", refused, (s) => {
  s.resources = { min_free_memory: "256MB!", min_free_disk: "1P", max_load: "0.9" };
  s.limits = { memory: 0, cpu: "1" };
}, [
  { field: "resources.min_free_memory", expected: SIZE, got: '"256MB!"' },
  { field: "resources.min_free_disk", expected: SIZE, got: '"1P"' },
  { field: "resources.max_load", expected: "a load average per core, a number more than 0, like 0.9", got: '"0.9"' },
  { field: "limits.memory", expected: `${SIZE}, more than 0`, got: "0" },
  { field: "limits.cpu", expected: "a number of cores more than 0, like 0.5 or 2", got: '"1"' },
]);
test("sizes with bits or a fraction of a byte", refused, (s) => (s.resources = { min_free_memory: "256Mb", min_free_disk: "1.5" }), [
  { field: "resources.min_free_memory", expected: SIZE, got: '"256Mb"' },
  { field: "resources.min_free_disk", expected: SIZE, got: '"1.5"' },
]);

// ---- unknown keys ----

test("a misspelled top-level key", refused, (s) => {
  s.helth = s.health;
  delete s.health;
}, [
  { field: "helth", expected: "one of the keys app, artifact, run, ports, proxy, health, hosts, lb, strategy, resources, limits, hooks", got: 'unknown key "helth" (did you mean "health"?)' },
  { field: "health", expected: "a mapping with one check, http: { path } or tcp: {}", got: "nothing" },
]);
test("unknown keys at every level", refused, (s) => {
  s.run.comand = ["x"];
  s.health.http.expect = 200;
  s.resources = { memory: "1G" };
  s.strategy = { type: "bluegreen", rollback: true };
}, [
  { field: "run.comand", expected: "one of the keys command, env, env_file, user, stop_signal, stop_timeout", got: 'unknown key "comand" (did you mean "command"?)' },
  { field: "health.http.expect", expected: "one of the keys path, expect_status", got: 'unknown key "expect"' },
  { field: "strategy.rollback", expected: "one of the keys type, batch, max_failures, keep_previous, canary, groups, steps, step_pause, analysis, verify, progress_deadline", got: 'unknown key "rollback"' },
  { field: "resources.memory", expected: "one of the keys min_free_memory, min_free_disk, max_load", got: 'unknown key "memory"' },
]);
test("a misspelled canary option", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weigth: 10 } };
}, [
  { field: "strategy.canary.weigth", expected: "one of the keys hosts, weight, cookie, pin, then, analysis", got: 'unknown key "weigth" (did you mean "weight"?)' },
  { field: "strategy.canary.weight", expected: 'the percent of users sent to the canaries, 0..100, like 10 or "10%"', got: "nothing" },
]);

// ---- strategies ----

test("an unknown strategy", refused, (s) => (s.strategy = { type: "blue-green" }), [
  { field: "strategy.type", expected: "bluegreen, rolling, canary, fleet-bluegreen", got: '"blue-green"' },
]);
test("canary fields on a bluegreen strategy", refused, (s) => (s.strategy = { type: "bluegreen", canary: { hosts: 1, weight: 10 } }), [
  { field: "strategy.canary", expected: "nothing here: canary applies only to type canary (type is bluegreen)", got: "a mapping" },
]);
test("canary fields when the type defaults to bluegreen", refused, (s) => (s.strategy = { canary: { weight: 10 } }), [
  { field: "strategy.canary", expected: "nothing here: canary applies only to type canary (type is bluegreen)", got: "a mapping" },
]);
test("fleet-bluegreen fields on a canary strategy", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 5 }, groups: { label: "g", blue: "a", green: "b" }, steps: [50, 100], step_pause: "1s" };
}, [
  { field: "strategy.groups", expected: "nothing here: groups applies only to type fleet-bluegreen (type is canary)", got: "a mapping" },
  { field: "strategy.steps", expected: "nothing here: steps applies only to type fleet-bluegreen (type is canary)", got: "a list" },
  { field: "strategy.step_pause", expected: "nothing here: step_pause applies only to type fleet-bluegreen (type is canary)", got: '"1s"' },
]);
test("keep_previous on a rolling strategy", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "rolling", keep_previous: "10m" };
}, [
  { field: "strategy.keep_previous", expected: "nothing here: keep_previous does not apply to rolling, which replaces the app in place (type is rolling)", got: '"10m"' },
]);
test("a canary strategy without its canary section", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary" };
}, [{ field: "strategy.canary", expected: "a canary section, like { hosts: 1, weight: 10 }, required by type canary", got: "nothing" }]);
test("a fleet-bluegreen strategy without groups", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen" };
}, [{ field: "strategy.groups", expected: "the two host groups, like { label: group, blue: a, green: b }, required by type fleet-bluegreen", got: "nothing" }]);
test("a rolling strategy without front load balancers", refused, (s) => (s.strategy = { type: "rolling" }), [
  { field: "lb", expected: "front load balancers, lb: { hosts, listen }, because strategy rolling moves traffic on them", got: "nothing" },
]);
test("batch and max_failures out of range", refused, (s) => (s.strategy = { batch: "0%", max_failures: -1 }), [
  { field: "strategy.batch", expected: COUNT_OR_PERCENT, got: '"0%"' },
  { field: "strategy.max_failures", expected: "an integer >= 0", got: "-1" },
]);
test("a batch count written as a string, and a percent over 100", refused, (s) => {
  s.lb = LB;
  s.strategy = { batch: "3", type: "canary", canary: { hosts: "150%", weight: 10 } };
}, [
  { field: "strategy.batch", expected: COUNT_OR_PERCENT, got: '"3"' },
  { field: "strategy.canary.hosts", expected: COUNT_OR_PERCENT, got: '"150%"' },
]);
test("a canary weight over 100, a bad cookie and then", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 150, cookie: "my cookie", then: "canary" } };
}, [
  { field: "strategy.canary.weight", expected: 'the percent of users sent to the canaries, 0..100, like 10 or "10%"', got: "150" },
  { field: "strategy.canary.cookie", expected: "a cookie name of A-Z, a-z, 0-9, '_', '-' (at most 64)", got: '"my cookie"' },
  { field: "strategy.canary.then", expected: "bluegreen or rolling", got: '"canary"' },
]);
test("a canary weight of 0 with no pin, which reaches no one", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 0 } };
}, [{ field: "strategy.canary.weight", expected: "more than 0, or a pin that routes chosen users to the canaries", got: "0" }]);
test("a pin with both header and cookie, and a numeric value", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 1, pin: { header: "X-Canary", cookie: "c", value: 1 } } };
}, [
  { field: "strategy.canary.pin.value", expected: "a string of A-Z, a-z, 0-9 and ._~:@+=,- (at most 128; quote numbers)", got: "1" },
  { field: "strategy.canary.pin", expected: "exactly one of header or cookie", got: "both" },
]);
test("fleet groups with the same value twice, and a selector that pins one group", refused, (s) => {
  s.lb = LB;
  s.hosts = { role: "geoip", group: "a" };
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "a" } };
}, [
  { field: "strategy.groups.green", expected: 'a value different from groups.blue ("a")', got: '"a"' },
  { field: "hosts.group", expected: "no group label: strategy.groups.label splits the selected hosts into the two groups, so hosts must select both", got: '"a"' },
]);
test("fleet steps that go down, exceed 100 or stop short", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, steps: [10, 5, 150] };
}, [
  { field: "strategy.steps[1]", expected: "more than the step before (10)", got: "5" },
  { field: "strategy.steps[2]", expected: "an integer percent 1..100", got: "150" },
]);
test("fleet steps that do not end at 100", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, steps: [10, 50] };
}, [{ field: "strategy.steps", expected: "a list ending at 100, so all traffic reaches the new group", got: "a list ending at 50" }]);

// ---- analysis (canary.analysis, strategy.analysis, strategy.verify) ----

const ERROR_RATE = 'a percent of requests 0..100 with its % sign, like "1%" or "0.5%"';
const AT_LEAST_1S = `${DURATION}, at least 1s`;
const ANALYSIS_SHAPE = 'a mapping with at least one check, like { interval: 10s, count: 6, max_error_rate: "1%" }';
const CHECKS = "at least one check: max_error_rate, max_latency_p99 or prometheus";
const PROMETHEUS_URL =
  'an http:// or https:// URL of the Prometheus server, like "http://127.0.0.1:9090", without user:password (the spec is stored and shown), query string or fragment';
const PROMQL = 'a PromQL query on one line, at most 2000 characters (YAML\'s ">-" folds a long one onto one line)';
const SUCCESS = 'a comparator (<, <=, >, >=, ==, !=) and a number, quoted, like "< 0.01" or ">= 0.99"';
const A = "strategy.canary.analysis";
const P = `${A}.prometheus`;

/** A canary strategy whose analysis is `analysis`. */
const withAnalysis = (analysis: unknown) => (s: Raw) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 10, analysis } };
};
/** A canary analysis whose prometheus check is `prometheus`. */
const withPrometheus = (prometheus: unknown) => withAnalysis({ prometheus });
const PROM = { url: "http://127.0.0.1:9090", query: "sum(rate(errors_total[1m]))", success: "< 0.01" };

test("an analysis that is not a mapping", refused, withAnalysis("5m"), [{ field: A, expected: ANALYSIS_SHAPE, got: '"5m"' }]);
test("an empty analysis", refused, withAnalysis(null), [{ field: A, expected: ANALYSIS_SHAPE, got: "an empty value" }]);
test("an analysis without a check", refused, withAnalysis({ interval: "10s", count: 6 }), [{ field: A, expected: CHECKS, got: "none" }]);
test("a misspelled analysis key", refused, withAnalysis({ windw: "5m", max_error_rate: "1%" }), [
  {
    field: `${A}.windw`,
    expected: "one of the keys interval, count, window, failure_limit, min_requests, max_error_rate, max_latency_p99, prometheus",
    got: 'unknown key "windw" (did you mean "window"?)',
  },
]);
test("an analysis interval under 1s", refused, withAnalysis({ interval: "500ms", max_error_rate: "1%" }), [
  { field: `${A}.interval`, expected: AT_LEAST_1S, got: '"500ms"' },
]);
test("an analysis interval as a bare number", refused, withAnalysis({ interval: 10, max_error_rate: "1%" }), [{ field: `${A}.interval`, expected: AT_LEAST_1S, got: "10" }]);
test("a count of 0, and verify on a canary", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 10, analysis: { count: 0, max_error_rate: "1%" } }, verify: {} };
}, [
  { field: `${A}.count`, expected: "a number of measurements, an integer >= 1", got: "0" },
  { field: "strategy.verify", expected: "nothing here: verify applies only to types bluegreen and rolling; a canary's goes in canary.analysis, fleet-bluegreen uses analysis (type is canary)", got: "a mapping" },
]);
for (const count of [1.5, "6"]) {
  test(`a count of ${JSON.stringify(count)}`, refused, withAnalysis({ count, max_error_rate: "1%" }), [
    { field: `${A}.count`, expected: "a number of measurements, an integer >= 1", got: typeof count === "string" ? `"${count}"` : String(count) },
  ]);
}
test("both count and window", refused, withAnalysis({ count: 6, window: "1m", max_error_rate: "1%" }), [
  { field: A, expected: "at most one of count or window (window means count = window / interval)", got: "both" },
]);
test("a window shorter than the interval", refused, withAnalysis({ interval: "30s", window: "10s", max_error_rate: "1%" }), [
  { field: `${A}.window`, expected: "at least interval (30000ms), so it holds one measurement", got: '"10s"' },
]);
test("an old-form window under 1s", refused, withAnalysis({ window: "500ms", max_error_rate: "1%" }), [{ field: `${A}.window`, expected: AT_LEAST_1S, got: '"500ms"' }]);
test("a failure_limit below 0 and a fractional min_requests", refused, withAnalysis({ failure_limit: -1, min_requests: 2.5, max_error_rate: "1%" }), [
  { field: `${A}.failure_limit`, expected: "an integer >= 0", got: "-1" },
  { field: `${A}.min_requests`, expected: "an integer >= 0", got: "2.5" },
]);
test("a min_requests written as a string", refused, withAnalysis({ min_requests: "10", max_error_rate: "1%" }), [
  { field: `${A}.min_requests`, expected: "an integer >= 0", got: '"10"' },
]);
test("a failure_limit as large as count, which could never fail", refused, withAnalysis({ count: 3, failure_limit: 3, max_error_rate: "1%" }), [
  { field: `${A}.failure_limit`, expected: "less than the number of measurements (3), or the analysis could never fail", got: "3" },
]);
test("a failure_limit as large as the count a window gives", refused, withAnalysis({ window: "30s", failure_limit: 3, max_error_rate: "1%" }), [
  { field: `${A}.failure_limit`, expected: "less than the number of measurements (3), or the analysis could never fail", got: "3" },
]);
test("an analysis longer than the progress deadline", refused, withAnalysis({ count: 180, max_error_rate: "1%" }), [
  {
    field: A,
    expected: "count × interval less than strategy.progress_deadline (1800000ms), or the rollout's deadline passes before the analysis ends",
    got: "180 × 10000ms = 1800000ms",
  },
]);
test("a bad progress deadline, reported once and not again against the analysis", refused, (s) => {
  withAnalysis({ count: 180, max_error_rate: "1%" })(s);
  s.strategy.progress_deadline = "forever";
}, [{ field: "strategy.progress_deadline", expected: `${DURATION}, more than 0`, got: '"forever"' }]);
for (const rate of ["0.01", 0.01, "101%", "-1%", "1 %"]) {
  test(`an error rate of ${JSON.stringify(rate)}`, refused, withAnalysis({ max_error_rate: rate }), [
    { field: `${A}.max_error_rate`, expected: ERROR_RATE, got: typeof rate === "string" ? JSON.stringify(rate) : String(rate) },
  ]);
}
for (const latency of ["0s", 200, "fast"]) {
  test(`a p99 latency of ${JSON.stringify(latency)}`, refused, withAnalysis({ max_latency_p99: latency }), [
    { field: `${A}.max_latency_p99`, expected: `${DURATION}, more than 0`, got: typeof latency === "string" ? JSON.stringify(latency) : String(latency) },
  ]);
}

test("a prometheus check that is not a mapping", refused, withPrometheus("http://prom:9090"), [
  { field: P, expected: 'a mapping like { url: "http://127.0.0.1:9090", query: "sum(rate(errors_total[1m]))", success: "< 0.01" }', got: '"http://prom:9090"' },
]);
test("an empty prometheus check", refused, withPrometheus(null), [
  { field: P, expected: 'a mapping like { url: "http://127.0.0.1:9090", query: "sum(rate(errors_total[1m]))", success: "< 0.01" }', got: "an empty value" },
]);
test("a prometheus check without url, query and success", refused, withPrometheus({}), [
  { field: `${P}.url`, expected: PROMETHEUS_URL, got: "nothing" },
  { field: `${P}.query`, expected: PROMQL, got: "nothing" },
  { field: `${P}.success`, expected: SUCCESS, got: "nothing" },
]);
test("a misspelled prometheus key", refused, withPrometheus({ ...PROM, sucess: "< 1" }), [
  { field: `${P}.sucess`, expected: "one of the keys url, query, success", got: 'unknown key "sucess" (did you mean "success"?)' },
]);
for (const [url, got] of [
  ["ftp://prom:9090", '"ftp://prom:9090": not http or https'],
  ["prom:9090", '"prom:9090": not http or https'],
  ["127.0.0.1:9090", '"127.0.0.1:9090": not a URL'],
  ["http://", '"http://": not a URL'],
  [" http://prom:9090", '" http://prom:9090": not a URL'],
  ["http://prom:9090/a b", '"http://prom:9090/a b": not a URL'],
  ["http://prom:9090/?", '"http://prom:9090/?": a query string or fragment'],
  ["http://prom:9090/api?x=1", '"http://prom:9090/api?x=1": a query string or fragment'],
  ["http://prom:9090/#top", '"http://prom:9090/#top": a query string or fragment'],
  ["http://admin:s3cret@prom:9090", "a URL with a user or password in it (not repeated here)"],
  ["https://token@prom:9090", "a URL with a user or password in it (not repeated here)"],
  ["http://@prom:9090", "a URL with a user or password in it (not repeated here)"],
  ["ftp://admin:s3cret@prom:9090", "a URL with a user or password in it (not repeated here)"],
  ["http://admin:s3cret@prom :9090", "a URL with a user or password in it (not repeated here)"],
  [9090, "9090"],
] as const) {
  test(`a prometheus url ${JSON.stringify(url)}`, refused, withPrometheus({ ...PROM, url }), [{ field: `${P}.url`, expected: PROMETHEUS_URL, got }]);
}
test("a prometheus url with credentials never repeats them in the message", (t) => {
  const spec = structuredClone(BASE) as Raw;
  withPrometheus({ ...PROM, url: "https://admin:s3cret@prom.example.com" })(spec);
  const error = t.throws(() => parseSpec(stringify(spec), { file: FILE, exists: fakeFs }), { instanceOf: SpecError });
  t.false(error.message.includes("s3cret"));
  t.false(error.message.includes("admin"));
});
const LONG_QUERY = `sum(up)${" ".repeat(1994)}`;
for (const [query, got] of [
  ["", '"": empty'],
  ["   ", '"   ": empty'],
  ["sum(up)\n/ count(up)", '"sum(up)\\n/ count(up)": 2 lines'],
  ["up\r\n", '"up\\r\\n": 2 lines'],
  ["up\u0000", '"up\\u0000": a control character'],
  [LONG_QUERY, `"${LONG_QUERY.slice(0, 77)}...": 2001 characters`],
  [0.5, "0.5"],
  [["up"], "a list"],
] as const) {
  test(`a prometheus query ${JSON.stringify(query).slice(0, 30)}`, refused, withPrometheus({ ...PROM, query }), [{ field: `${P}.query`, expected: PROMQL, got }]);
}
for (const success of ["0.01", "< abc", "<< 1", "=< 1", "=> 1", "= 1", "< 1e999", "< Infinity", "< 0x10", "<", "< 1 2", 0.01]) {
  test(`a prometheus success ${JSON.stringify(success)}`, refused, withPrometheus({ ...PROM, success }), [
    { field: `${P}.success`, expected: SUCCESS, got: typeof success === "string" ? JSON.stringify(success) : String(success) },
  ]);
}
test("an unquoted success starting with >, which YAML reads as a block scalar", refused, "app: geoip\nstrategy:\n  verify:\n    prometheus:\n      url: http://p\n      query: up\n      success: >= 1\n", [
  { field: "line 7, column 17", expected: "valid YAML", got: "Block scalar header includes extra characters: >=" },
  { field: "line 7, column 19", expected: "valid YAML", got: "Not a YAML token: 1" },
]);

// where each analysis may appear
test("strategy.analysis on bluegreen, where it is verify", refused, (s) => (s.strategy = { analysis: { max_error_rate: "1%" } }), [
  {
    field: "strategy.analysis",
    expected: "nothing here: analysis applies only to type fleet-bluegreen; a canary's goes in canary.analysis, bluegreen and rolling use verify (type is bluegreen)",
    got: "a mapping",
  },
]);
test("strategy.analysis on rolling", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "rolling", analysis: { max_error_rate: "1%" } };
}, [
  {
    field: "strategy.analysis",
    expected: "nothing here: analysis applies only to type fleet-bluegreen; a canary's goes in canary.analysis, bluegreen and rolling use verify (type is rolling)",
    got: "a mapping",
  },
]);
test("strategy.analysis on canary, beside its canary section", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "canary", canary: { weight: 10 }, analysis: { max_error_rate: "1%" } };
}, [
  {
    field: "strategy.analysis",
    expected: "nothing here: analysis applies only to type fleet-bluegreen; a canary's goes in canary.analysis, bluegreen and rolling use verify (type is canary)",
    got: "a mapping",
  },
]);
test("strategy.verify on fleet-bluegreen", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, verify: { max_error_rate: "1%" } };
}, [
  {
    field: "strategy.verify",
    expected: "nothing here: verify applies only to types bluegreen and rolling; a canary's goes in canary.analysis, fleet-bluegreen uses analysis (type is fleet-bluegreen)",
    got: "a mapping",
  },
]);
test("canary.analysis on bluegreen, with the canary section it lives in", refused, (s) => (s.strategy = { canary: { weight: 10, analysis: { max_error_rate: "1%" } } }), [
  { field: "strategy.canary", expected: "nothing here: canary applies only to type canary (type is bluegreen)", got: "a mapping" },
]);
test("step_pause and analysis together on fleet-bluegreen", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, step_pause: "10s", analysis: { max_error_rate: "1%" } };
}, [{ field: "strategy.step_pause", expected: "nothing here when analysis is given: the analysis is the wait at each step", got: '"10s"' }]);
test("step_pause beside an analysis that is itself wrong", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, step_pause: "10s", analysis: "1m" };
}, [
  { field: "strategy.analysis", expected: ANALYSIS_SHAPE, got: '"1m"' },
  { field: "strategy.step_pause", expected: "nothing here when analysis is given: the analysis is the wait at each step", got: '"10s"' },
]);
test("a bad verify, each issue under strategy.verify", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "rolling", verify: { interval: "0s", max_latency_p99: "0ms" } };
}, [
  { field: "strategy.verify.interval", expected: AT_LEAST_1S, got: '"0s"' },
  { field: "strategy.verify.max_latency_p99", expected: `${DURATION}, more than 0`, got: '"0ms"' },
]);
test("a fleet analysis without a check", refused, (s) => {
  s.lb = LB;
  s.strategy = { type: "fleet-bluegreen", groups: { label: "group", blue: "a", green: "b" }, analysis: { count: 2 } };
}, [{ field: "strategy.analysis", expected: CHECKS, got: "none" }]);

test("packages/spec/README.md describes every analysis key", (t) => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const start = readme.indexOf("| Key | Default | Meaning |", readme.indexOf("## Rollout analysis"));
  t.not(start, -1);
  const table = readme.slice(start, readme.indexOf("\n\n", start));
  const described = [...table.matchAll(/^\| `([a-z0-9_.]+)`/gm)].map((m) => m[1]);
  t.deepEqual(described, ANALYSIS_KEYS.flatMap((key) => (key === "prometheus" ? PROMETHEUS_KEYS.map((k) => `${key}.${k}`) : [key])));
});

// ---- labels, run options ----

test("label values that are numbers, and an invalid label key", refused, (s) => (s.hosts = { rack: 3, Role: "web", "app.io/name": "a b" }), [
  { field: "hosts.rack", expected: "a label value string (quote numbers and booleans)", got: "3" },
  { field: "hosts.Role", expected: `a valid label (${LABEL_RULE})`, got: '"Role": "web"' },
  { field: 'hosts["app.io/name"]', expected: `a valid label (${LABEL_RULE})`, got: '"app.io/name": "a b"' },
]);
test("an lb without hosts", refused, (s) => (s.lb = { listen: 80 }), [
  { field: "lb.hosts", expected: "a label selector with at least one label, like { role: web }", got: "nothing" },
]);
test("a bad user, signal and env", refused, (s) => {
  s.run.user = "Geo IP";
  s.run.stop_signal = "SIGFOO";
  s.run.env = { "1X": "a", LIST: ["a"], NOTHING: null };
}, [
  { field: 'run.env["1X"]', expected: "a variable name of A-Z, a-z, 0-9 and '_', not starting with a digit", got: '"1X"' },
  { field: "run.env.LIST", expected: "a string, number or boolean, or { secret: NAME }", got: "a list" },
  { field: "run.env.NOTHING", expected: "a string, number or boolean, or { secret: NAME }", got: "an empty value" },
  {
    field: "run.user",
    expected: "a unix user name: a-z, 0-9, '_', '-', starting with a letter or '_', at most 32 characters (leave it out only for hosts whose agent sets allow_root_apps: the app would run as root)",
    got: '"Geo IP"',
  },
  { field: "run.stop_signal", expected: "a signal name: SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGABRT, SIGKILL", got: '"SIGFOO"' },
]);

test("a secret reference that is not { secret: NAME } with NAME an env var name", refused, (s) => {
  s.run.env = { A: { secret: "db-url" }, B: { secret: 3 }, C: { secret: "OK", value: "x" }, D: { name: "X" }, E: { secret: null } };
}, [
  { field: "run.env.A.secret", expected: "a secret name of A-Z, a-z, 0-9 and '_', not starting with a digit (cutover secret list APP shows the names set)", got: '"db-url"' },
  { field: "run.env.B.secret", expected: "a secret name of A-Z, a-z, 0-9 and '_', not starting with a digit (cutover secret list APP shows the names set)", got: "3" },
  { field: "run.env.C", expected: "{ secret: NAME }, naming one of the app's secrets (cutover secret set APP NAME)", got: 'unknown key "value"' },
  { field: "run.env.D", expected: "{ secret: NAME }, naming one of the app's secrets (cutover secret set APP NAME)", got: 'unknown key "name"' },
  { field: "run.env.E.secret", expected: "a secret name of A-Z, a-z, 0-9 and '_', not starting with a digit (cutover secret list APP shows the names set)", got: "an empty value" },
]);
test("an env_file that is not an absolute path", refused, (s) => {
  s.run.env_file = "etc/geoip/env";
}, [{ field: "run.env_file", expected: "an absolute path to a file of KEY=VALUE lines on each host, like /etc/geoip/env", got: '"etc/geoip/env"' }]);
test("an env_file that is a list", refused, (s) => {
  s.run.env_file = ["/etc/a"];
}, [{ field: "run.env_file", expected: "an absolute path to a file of KEY=VALUE lines on each host, like /etc/geoip/env", got: "a list" }]);

// ---- artifact ----

test("an artifact path that does not exist", refused, (s) => (s.artifact = "./build"), [
  { field: "artifact", expected: "an existing directory or .tar.gz/.tgz file", got: '"./build" (/srv/geoip/build): not found' },
]);
test("an artifact that is neither a directory nor a tarball", refused, (s) => (s.artifact = "app.zip"), [
  { field: "artifact", expected: "an existing directory or .tar.gz/.tgz file", got: '"app.zip" (/srv/geoip/app.zip): a file that is not a .tar.gz/.tgz' },
]);
test("an empty artifact", refused, (s) => (s.artifact = null), [
  { field: "artifact", expected: "a path to a directory or a .tar.gz/.tgz file", got: "an empty value" },
]);

// ---- YAML itself ----

test("a YAML syntax error, with line and column", refused, "app: geoip\nrun:\n  command: [node\nports: {}\n", [
  { field: "line 4, column 1", expected: "valid YAML", got: "Flow sequence in block collection must be sufficiently indented and end with a ]" },
]);
test("a key given twice", refused, "app: geoip\napp: other\n", [{ field: "line 2, column 1", expected: "valid YAML", got: "Map keys must be unique" }]);
test("a tab used for indentation", refused, "app: geoip\nrun:\n\tcommand: [x]\n", [
  { field: "line 3, column 1", expected: "valid YAML", got: "Tabs are not allowed as indentation" },
]);
test("two YAML documents in one file", refused, "app: a\n---\napp: b\n", [
  { field: "line 2, column 1", expected: "valid YAML", got: "Source contains multiple documents; please use YAML.parseAllDocuments()" },
]);
test("an unknown YAML tag", refused, "app: !secret geoip\n", [{ field: "line 1, column 6", expected: "valid YAML", got: "Unresolved tag: !secret" }]);
test("a file that expands aliases without bound", refused, `app: &a geoip\nrun: { command: [${Array(101).fill("*a").join(", ")}] }\n`, [
  { field: "(root)", expected: "valid YAML", got: "Excessive alias count indicates a resource exhaustion attack" },
]);
