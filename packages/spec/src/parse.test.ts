import test from "ava";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isSecretRef, parseSpec, parseSpecFile, resolveCount, secretNamesOf, SPEC_EXAMPLE, SpecError } from "./index.js";
import type { AppSpec } from "./index.js";

const FILE = "/srv/geoip/cutover.yml";
const fakeFs = (path: string): "file" | "dir" | null =>
  ({ "/srv/geoip/dist": "dir", "/srv/geoip/build/app-1.2.tgz": "file", "/opt/releases/geoip.tar.gz": "file" })[path] as
    | "file"
    | "dir"
    | undefined ?? null;
const parse = (text: string, options: { baseDir?: string } = {}): AppSpec => parseSpec(text, { file: FILE, exists: fakeFs, ...options });

const MINIMAL = `
app: geoip
run:
  command: [node, server.js, --port, "\${PORT}"]
ports: { blue: 7001, green: 7002 }
proxy: { listen: 80 }
health:
  http: { path: /health_check }
hosts: { role: geoip }
`;

/** MINIMAL with its strategy (and lb, which every non-bluegreen strategy needs) replaced. */
const withStrategy = (strategy: string): string => `${MINIMAL}lb: { hosts: { role: lb }, listen: 8080 }\nstrategy:\n${strategy}`;

test("SPEC_EXAMPLE parses to the documented values", (t) => {
  t.deepEqual(parse(SPEC_EXAMPLE), {
    app: "geoip",
    artifact: { path: "/srv/geoip/dist", kind: "dir" },
    run: {
      command: ["node", "server.js", "--port", "${PORT}"],
      env: { NODE_ENV: "production" },
      user: "geoip",
      stopSignal: "SIGTERM",
      stopTimeoutMs: 30_000,
    },
    ports: { blue: 7001, green: 7002 },
    proxy: { listen: 80, protocol: "http", directives: ["client_max_body_size 10m"] },
    health: { check: { kind: "http", path: "/health_check", expectStatus: 200 }, intervalMs: 1_000, liveIntervalMs: 5_000, timeoutMs: 2_000, healthyThreshold: 2, deadlineMs: 60_000 },
    hosts: { role: "geoip" },
    lb: { hosts: { role: "lb" }, listen: 80, drainTimeoutMs: 30_000 },
    strategy: {
      type: "bluegreen",
      batch: { kind: "percent", percent: 25 },
      maxFailures: 0,
      keepPreviousMs: 600_000,
      progressDeadlineMs: 1_800_000,
      verify: { intervalMs: 10_000, count: 6, failureLimit: 0, minRequests: 10, maxErrorRatePercent: 1, maxLatencyP99Ms: 200 },
    },
    resources: { minFreeMemoryBytes: 268_435_456, minFreeDiskBytes: 1_073_741_824, maxLoad: 0.9 },
    limits: { memoryBytes: 536_870_912, cpu: 1 },
    hooks: {
      preDeploy: { command: ["node", "migrate.js", "--release", "${RELEASE}"], timeoutMs: 300_000 },
      postSwitch: { command: ["node", "smoke.js", "http://${ADDRESS}:${PORT}/health_check"], timeoutMs: 60_000 },
    },
  });
});

test("a minimal spec gets every default", (t) => {
  t.deepEqual(parse(MINIMAL), {
    app: "geoip",
    run: { command: ["node", "server.js", "--port", "${PORT}"], env: {}, stopSignal: "SIGTERM", stopTimeoutMs: 30_000 },
    ports: { blue: 7001, green: 7002 },
    proxy: { listen: 80, protocol: "http" },
    health: { check: { kind: "http", path: "/health_check", expectStatus: 200 }, intervalMs: 1_000, liveIntervalMs: 5_000, timeoutMs: 2_000, healthyThreshold: 2, deadlineMs: 60_000 },
    hosts: { role: "geoip" },
    strategy: { type: "bluegreen", batch: { kind: "count", count: 1 }, maxFailures: 0, keepPreviousMs: 600_000, progressDeadlineMs: 1_800_000 },
    resources: {},
    limits: {},
  });
});

test("the result is plain JSON: it survives a round trip unchanged", (t) => {
  const spec = parse(SPEC_EXAMPLE);
  t.deepEqual(JSON.parse(JSON.stringify(spec)), spec);
});

test("a tcp app with a tcp health check, custom timings and run options", (t) => {
  const spec = parse(`
app: redis-cache.v2
run:
  command: [/usr/bin/redis-server, --port, "\${PORT}"]
  user: _redis
  stop_signal: INT
  stop_timeout: 1m30s
ports: { blue: 6380, green: 6381 }
proxy: { listen: 6379, protocol: tcp }
health:
  tcp: {}
  interval: 250ms
  live_interval: 30s
  timeout: 1.5s
  healthy_threshold: 5
  deadline: 2m
hosts: { "app.example.com/tier": cache, zone: "1" }
`);
  t.deepEqual(spec.run, { command: ["/usr/bin/redis-server", "--port", "${PORT}"], env: {}, user: "_redis", stopSignal: "SIGINT", stopTimeoutMs: 90_000 });
  t.deepEqual(spec.proxy, { listen: 6379, protocol: "tcp" });
  t.deepEqual(spec.health, { check: { kind: "tcp" }, intervalMs: 250, liveIntervalMs: 30_000, timeoutMs: 1_500, healthyThreshold: 5, deadlineMs: 120_000 });
  t.deepEqual(spec.hosts, { "app.example.com/tier": "cache", zone: "1" });
});

test("an empty tcp check (tcp: with nothing after it) is a tcp check", (t) => {
  const spec = parse(MINIMAL.replace("http: { path: /health_check }", "tcp:"));
  t.deepEqual(spec.health.check, { kind: "tcp" });
});

test("env scalars become strings exactly as written", (t) => {
  const spec = parse(MINIMAL.replace("run:\n", 'run:\n  env: { VERSION: 1.10, DEBUG: false, MASK: 0o22, ID: 007, BIG: 1e3, NAME: "x y", EMPTY: "" }\n'));
  t.deepEqual(spec.run.env, { VERSION: "1.10", DEBUG: "false", MASK: "0o22", ID: "007", BIG: "1e3", NAME: "x y", EMPTY: "" });
});

test("an env variable named __proto__ is an own entry, not the prototype", (t) => {
  const spec = parse(MINIMAL.replace("run:\n", "run:\n  env: { __proto__: x }\n"));
  t.deepEqual(Object.entries(spec.run.env), [["__proto__", "x"]]);
  t.is(Object.getPrototypeOf(spec.run.env), Object.prototype);
});

test("an env value { secret: NAME } stays a reference; env_file is kept as written", (t) => {
  const spec = parse(MINIMAL.replace("run:\n", "run:\n  env: { DATABASE_URL: { secret: DATABASE_URL }, API_KEY: { secret: GEOIP_KEY }, NODE_ENV: production }\n  env_file: /etc/geoip/env\n"));
  t.deepEqual(spec.run.env, { DATABASE_URL: { secret: "DATABASE_URL" }, API_KEY: { secret: "GEOIP_KEY" }, NODE_ENV: "production" });
  t.is(spec.run.envFile, "/etc/geoip/env");
  t.deepEqual(secretNamesOf(spec), ["DATABASE_URL", "GEOIP_KEY"]);
  t.true(isSecretRef(spec.run.env.API_KEY!));
  t.false(isSecretRef(spec.run.env.NODE_ENV!));
  // What the coordinator stores and every API read returns: the reference, as JSON.
  t.deepEqual(JSON.parse(JSON.stringify(spec)).run.env.DATABASE_URL, { secret: "DATABASE_URL" });
});

test("a spec without secrets or env_file references none", (t) => {
  const spec = parse(MINIMAL);
  t.deepEqual(secretNamesOf(spec), []);
  t.is(spec.run.envFile, undefined);
  t.false("envFile" in spec.run);
});

test("artifact paths resolve against the spec file's directory, or baseDir when given", (t) => {
  t.deepEqual(parse(`${MINIMAL}artifact: build/app-1.2.tgz\n`).artifact, { path: "/srv/geoip/build/app-1.2.tgz", kind: "tarball" });
  t.deepEqual(parse(`${MINIMAL}artifact: ../geoip/dist/\n`).artifact, { path: "/srv/geoip/dist", kind: "dir" });
  t.deepEqual(parse(`${MINIMAL}artifact: /opt/releases/geoip.tar.gz\n`).artifact, { path: "/opt/releases/geoip.tar.gz", kind: "tarball" });
  t.deepEqual(parse(`${MINIMAL}artifact: ./dist\n`, { baseDir: "/srv/geoip/build/.." }).artifact, { path: "/srv/geoip/dist", kind: "dir" });
});

test("rolling: in place, so no keepPreviousMs; batch and limits as given", (t) => {
  const spec = parse(withStrategy("  type: rolling\n  batch: 2\n  max_failures: 1\n  progress_deadline: 1h\n"));
  t.deepEqual(spec.strategy, { type: "rolling", batch: { kind: "count", count: 2 }, maxFailures: 1, progressDeadlineMs: 3_600_000 });
  t.deepEqual(spec.lb, { hosts: { role: "lb" }, listen: 8080, drainTimeoutMs: 30_000 });
});

test("canary with every option", (t) => {
  const spec = parse(
    withStrategy(`  type: canary
  batch: 50%
  canary:
    hosts: 10%
    weight: 12.5%
    cookie: beta_users
    pin: { header: X-Canary, value: "1" }
    then: rolling
    analysis: { interval: 5s, count: 12, failure_limit: 2, min_requests: 50, max_error_rate: 0.5%, max_latency_p99: 200ms }
`),
  );
  t.deepEqual(spec.strategy, {
    type: "canary",
    batch: { kind: "percent", percent: 50 },
    maxFailures: 0,
    progressDeadlineMs: 1_800_000,
    keepPreviousMs: 600_000,
    canary: {
      hosts: { kind: "percent", percent: 10 },
      weightPercent: 12.5,
      cookie: "beta_users",
      pin: { kind: "header", name: "X-Canary", value: "1" },
      then: "rolling",
      analysis: { intervalMs: 5_000, count: 12, failureLimit: 2, minRequests: 50, maxErrorRatePercent: 0.5, maxLatencyP99Ms: 200 },
    },
  });
});

test("canary defaults, and a cookie pin that lets weight be 0", (t) => {
  t.deepEqual(parse(withStrategy("  type: canary\n  canary: { weight: 10 }\n")).strategy, {
    type: "canary",
    batch: { kind: "count", count: 1 },
    maxFailures: 0,
    progressDeadlineMs: 1_800_000,
    keepPreviousMs: 600_000,
    canary: { hosts: { kind: "count", count: 1 }, weightPercent: 10, cookie: "cutover_canary", then: "bluegreen" },
  });
  const pinned = parse(withStrategy("  type: canary\n  canary: { weight: 0, pin: { cookie: tester, value: yes } }\n")).strategy;
  t.like(pinned, { type: "canary", canary: { weightPercent: 0, pin: { kind: "cookie", name: "tester", value: "yes" } } });
});

test("fleet-bluegreen with defaults and with every option", (t) => {
  t.deepEqual(parse(withStrategy("  type: fleet-bluegreen\n  groups: { label: group, blue: a, green: b }\n")).strategy, {
    type: "fleet-bluegreen",
    batch: { kind: "count", count: 1 },
    maxFailures: 0,
    progressDeadlineMs: 1_800_000,
    keepPreviousMs: 600_000,
    groups: { label: "group", blue: "a", green: "b" },
    steps: [10, 50, 100],
    stepPauseMs: 10_000,
  });
  t.like(parse(withStrategy("  type: fleet-bluegreen\n  groups: { label: dc, blue: east, green: west }\n  steps: [1, 5, 25, 100]\n  step_pause: 0s\n  keep_previous: 1h\n")).strategy, {
    type: "fleet-bluegreen",
    keepPreviousMs: 3_600_000,
    steps: [1, 5, 25, 100],
    stepPauseMs: 0,
  });
});

// ---- analysis: canary.analysis, strategy.analysis (fleet-bluegreen), strategy.verify (bluegreen, rolling) ----

const canaryAnalysis = (analysis: string): unknown => parse(withStrategy(`  type: canary\n  canary:\n    weight: 10\n    analysis: ${analysis}\n`)).strategy;
const analysisOf = (analysis: string): unknown => (canaryAnalysis(analysis) as { canary: { analysis: unknown } }).canary.analysis;

test("analysis: one check and every default", (t) => {
  t.deepEqual(analysisOf("{ max_latency_p99: 250ms }"), { intervalMs: 10_000, count: 6, failureLimit: 0, minRequests: 10, maxLatencyP99Ms: 250 });
});

test("analysis: the older { window, max_error_rate } form reads as measurements every 10s", (t) => {
  t.deepEqual(analysisOf("{ window: 5m, max_error_rate: 1% }"), { intervalMs: 10_000, count: 30, failureLimit: 0, minRequests: 10, maxErrorRatePercent: 1 });
});

test("analysis: a window under 10s without an interval is one measurement over the whole window", (t) => {
  t.like(analysisOf('{ window: 3s, max_error_rate: "1%" }'), { intervalMs: 3_000, count: 1 });
});

test("analysis: a window with an interval gives count = ceil(window / interval)", (t) => {
  t.like(analysisOf('{ interval: 10s, window: 25s, max_error_rate: "1%" }'), { intervalMs: 10_000, count: 3 });
  t.like(analysisOf('{ interval: 15s, window: 1m, max_error_rate: "1%" }'), { intervalMs: 15_000, count: 4 });
  t.like(analysisOf('{ interval: 10s, window: 10s, max_error_rate: "1%" }'), { intervalMs: 10_000, count: 1 });
});

test("analysis: the edges of each range are accepted", (t) => {
  t.deepEqual(analysisOf('{ interval: 1s, count: 1, failure_limit: 0, min_requests: 0, max_error_rate: "0%" }'), {
    intervalMs: 1_000,
    count: 1,
    failureLimit: 0,
    minRequests: 0,
    maxErrorRatePercent: 0,
  });
  t.like(analysisOf('{ count: 5, failure_limit: 4, max_error_rate: "100%", max_latency_p99: 1ms }'), { count: 5, failureLimit: 4, maxErrorRatePercent: 100, maxLatencyP99Ms: 1 });
  // 179 × 10s is just under the default progress deadline of 30m.
  t.like(analysisOf('{ count: 179, max_error_rate: "1%" }'), { count: 179 });
});

test("analysis: a longer analysis fits a longer progress deadline", (t) => {
  const strategy = parse(withStrategy("  type: canary\n  progress_deadline: 2h\n  canary:\n    weight: 10\n    analysis: { interval: 1m, count: 60, max_error_rate: 1% }\n")).strategy;
  t.like(strategy, { progressDeadlineMs: 7_200_000, canary: { analysis: { intervalMs: 60_000, count: 60 } } });
});

test("analysis: a prometheus check, with every check and option", (t) => {
  t.deepEqual(
    analysisOf(`
      interval: 30s
      window: 5m
      failure_limit: 1
      min_requests: 100
      max_error_rate: 2.5%
      max_latency_p99: 1.5s
      prometheus:
        url: https://prometheus.example.com/prom
        query: sum(rate(errors_total{app="geoip"}[1m])) / sum(rate(requests_total{app="geoip"}[1m]))
        success: "< 0.01"`),
    {
      intervalMs: 30_000,
      count: 10,
      failureLimit: 1,
      minRequests: 100,
      maxErrorRatePercent: 2.5,
      maxLatencyP99Ms: 1_500,
      prometheus: {
        url: "https://prometheus.example.com/prom",
        query: 'sum(rate(errors_total{app="geoip"}[1m])) / sum(rate(requests_total{app="geoip"}[1m]))',
        success: { comparator: "<", value: 0.01 },
      },
    },
  );
});

test("analysis: a prometheus check alone, its query folded onto one line by YAML", (t) => {
  t.deepEqual(
    analysisOf(`
      prometheus:
        url: http://127.0.0.1:9090
        query: >-
          sum(rate(http_requests_total{code=~"5.."}[1m]))
          / sum(rate(http_requests_total[1m]))
        success: "<= 0.05"`),
    {
      intervalMs: 10_000,
      count: 6,
      failureLimit: 0,
      minRequests: 10,
      prometheus: {
        url: "http://127.0.0.1:9090",
        query: 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))',
        success: { comparator: "<=", value: 0.05 },
      },
    },
  );
});

const successOf = (success: string): unknown =>
  (analysisOf(`{ prometheus: { url: "http://prom:9090", query: up, success: ${JSON.stringify(success)} } }`) as { prometheus: { success: unknown } }).prometheus.success;
for (const [written, comparator, value] of [
  ["< 0.01", "<", 0.01],
  ["<=1", "<=", 1],
  ["> -2", ">", -2],
  [">= 1e3", ">=", 1000],
  ["== 0", "==", 0],
  ["!= .5", "!=", 0.5],
  ["  <  +7.  ", "<", 7],
] as const) {
  test(`analysis: prometheus success ${JSON.stringify(written)}`, (t) => {
    t.deepEqual(successOf(written), { comparator, value });
  });
}

test("analysis: prometheus urls are kept as written, a path prefix (even with an @ in it) included", (t) => {
  for (const url of ["http://127.0.0.1:9090", "https://prometheus.example.com/", "https://metrics.example.com:8443/team@ops/prometheus"]) {
    t.like(analysisOf(`{ prometheus: { url: "${url}", query: up, success: "== 1" } }`), { prometheus: { url } });
  }
});

test("analysis: a prometheus query of exactly 2000 characters, with a tab in it", (t) => {
  const query = `sum(\tup)${" ".repeat(2000 - 8)}`;
  t.is(query.length, 2000);
  t.like(analysisOf(`{ prometheus: { url: "http://prom:9090", query: ${JSON.stringify(query)}, success: "== 1" } }`), { prometheus: { query } });
});

test("analysis: fleet-bluegreen judges each weight step, in place of step_pause", (t) => {
  t.deepEqual(parse(withStrategy("  type: fleet-bluegreen\n  groups: { label: group, blue: a, green: b }\n  analysis: { count: 3, max_error_rate: 1% }\n")).strategy, {
    type: "fleet-bluegreen",
    batch: { kind: "count", count: 1 },
    maxFailures: 0,
    progressDeadlineMs: 1_800_000,
    keepPreviousMs: 600_000,
    groups: { label: "group", blue: "a", green: "b" },
    steps: [10, 50, 100],
    stepPauseMs: 0,
    analysis: { intervalMs: 10_000, count: 3, failureLimit: 0, minRequests: 10, maxErrorRatePercent: 1 },
  });
});

test("analysis: bluegreen and rolling verify each batch", (t) => {
  t.deepEqual(parse(`${MINIMAL}strategy:\n  verify: { window: 1m, max_latency_p99: 200ms }\n`).strategy, {
    type: "bluegreen",
    batch: { kind: "count", count: 1 },
    maxFailures: 0,
    progressDeadlineMs: 1_800_000,
    keepPreviousMs: 600_000,
    verify: { intervalMs: 10_000, count: 6, failureLimit: 0, minRequests: 10, maxLatencyP99Ms: 200 },
  });
  t.deepEqual(parse(withStrategy("  type: rolling\n  verify: { interval: 5s, count: 2, min_requests: 1, max_error_rate: 0.1% }\n")).strategy, {
    type: "rolling",
    batch: { kind: "count", count: 1 },
    maxFailures: 0,
    progressDeadlineMs: 1_800_000,
    verify: { intervalMs: 5_000, count: 2, failureLimit: 0, minRequests: 1, maxErrorRatePercent: 0.1 },
  });
});

test("YAML anchors and merge keys work", (t) => {
  const spec = parse(`${MINIMAL.replace("hosts: { role: geoip }", "hosts: &sel { role: geoip }")}lb:
  <<: { listen: 81 }
  hosts: *sel
strategy: { type: rolling }
`);
  t.deepEqual(spec.lb, { hosts: { role: "geoip" }, listen: 81, drainTimeoutMs: 30_000 });
});

test("a parsed batch resolves against the host count", (t) => {
  const { strategy } = parse(SPEC_EXAMPLE);
  t.is(resolveCount(strategy.batch, 10), 3);
  t.is(resolveCount(strategy.batch, 3), 1);
});

test("the message lists every issue as <file>: <field>: expected <expected>, got <got>", (t) => {
  const error = t.throws(() => parse(MINIMAL.replace("green: 7002", "green: 7001").replace("path: /health_check", "path: health")), { instanceOf: SpecError });
  t.is(error.name, "SpecError");
  t.is(error.code, "ERR_SPEC_INVALID");
  t.is(error.file, FILE);
  t.is(
    error.message,
    [
      "/srv/geoip/cutover.yml: ports.green: expected a port different from ports.blue (7001), got 7001",
      '/srv/geoip/cutover.yml: health.http.path: expected a URL path starting with "/", without spaces, got "health"',
    ].join("\n"),
  );
});

test("every issue is reported, not just the first", (t) => {
  const error = t.throws(() => parse("app: Geo IP\nrun: {}\nports: { blue: 0, green: x }\nproxy: {}\nhealth: {}\nhosts: {}\nstrategy: { type: x }\n"), {
    instanceOf: SpecError,
  });
  t.deepEqual(
    error.issues.map((issue) => issue.field),
    ["app", "run.command", "ports.blue", "ports.green", "proxy.listen", "health", "hosts", "strategy.type"],
  );
});

test("parseSpecFile reads a real file and finds a real artifact directory", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-spec-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "dist"));
  const file = join(dir, "geoip.yml");
  writeFileSync(file, `${MINIMAL}artifact: ./dist\n`);
  t.deepEqual(parseSpecFile(file).artifact, { path: join(dir, "dist"), kind: "dir" });

  writeFileSync(file, `${MINIMAL}artifact: ./missing.tgz\n`);
  const error = t.throws(() => parseSpecFile(file), { instanceOf: SpecError });
  t.deepEqual(error.issues, [{ field: "artifact", expected: "an existing directory or .tar.gz/.tgz file", got: `"./missing.tgz" (${join(dir, "missing.tgz")}): not found` }]);
});

test("parseSpecFile: a missing file is a SpecError naming the file", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-spec-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "nope.yml");
  const error = t.throws(() => parseSpecFile(file), { instanceOf: SpecError });
  t.is(error.code, "ERR_SPEC_INVALID");
  t.is(error.file, file);
  t.deepEqual(error.issues, [{ field: "(file)", expected: "a readable spec file", got: `ENOENT: no such file or directory, open '${file}'` }]);
});

test("parseSpecFile: a syntax error names the file, line and column", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-spec-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "geoip.yml");
  writeFileSync(file, "app: geoip\nports: { blue: 7001, green: 7002\nproxy: { listen: 80 }\n");
  const error = t.throws(() => parseSpecFile(file), { instanceOf: SpecError });
  t.is(error.file, file);
  t.true(error.issues.length > 0);
  t.deepEqual(error.issues[0], { field: "line 3, column 1", expected: "valid YAML", got: "Flow map in block collection must be sufficiently indented and end with a }" });
  t.true(error.message.startsWith(`${file}: line 3, column 1: expected valid YAML, got `));
});
