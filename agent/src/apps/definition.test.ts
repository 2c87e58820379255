// The edge where a Deploy's definition enters the agent: the health section's
// live interval, defaulted and checked there (the gate's interval is the gate's alone).
import test from "ava";
import type { cutover } from "@cutover/protocol";
import { appDefinitionOf, DEFAULT_LIVE_CHECK_INTERVAL_MS } from "./definition.js";

const WIRE = {
  name: "geoip",
  bluePort: 7001,
  greenPort: 7002,
  proxy: { listenPort: 8080 },
  run: { command: ["node", "server.mjs"] },
};
const withHealth = (health: Record<string, unknown>) => ({ ...WIRE, health: { kind: "http", path: "/health_check", intervalMs: 100, ...health } });

test("the live interval is the wire's, apart from the gate's interval; 0 or none (an older coordinator) is the default, 5 s", (t) => {
  t.is(DEFAULT_LIVE_CHECK_INTERVAL_MS, 5000);
  t.like(appDefinitionOf(withHealth({ liveIntervalMs: 30_000 })).health, { intervalMs: 100, liveIntervalMs: 30_000 });
  t.like(appDefinitionOf(withHealth({ liveIntervalMs: 0 })).health, { intervalMs: 100, liveIntervalMs: 5000 });
  t.like(appDefinitionOf(withHealth({})).health, { intervalMs: 100, liveIntervalMs: 5000 });
  t.like(appDefinitionOf(WIRE).health, { intervalMs: 1000, liveIntervalMs: 5000 });
});

test("a definition already checked reads back the same; one saved before live intervals existed gets the default", (t) => {
  const checked = appDefinitionOf(withHealth({ liveIntervalMs: 2000 }));
  t.deepEqual(appDefinitionOf(checked), checked);
  const { liveIntervalMs: _, ...savedByAnOlderAgent } = checked.health;
  t.is(appDefinitionOf({ ...checked, health: savedByAnOlderAgent as never }).health.liveIntervalMs, 5000);
});

for (const liveIntervalMs of [500, 999, 2 ** 31, 2 ** 32 - 1, 1500.5]) {
  test(`a live interval of ${liveIntervalMs} ms is refused at the edge`, (t) => {
    const error = t.throws(() => appDefinitionOf(withHealth({ liveIntervalMs })));
    t.is((error as { code?: string }).code, "ERR_INVALID_DEFINITION");
    t.is(error?.message, `the definition of geoip has a health live interval of ${liveIntervalMs} ms: it must be a whole number of ms from 1000 to 2147483647`);
  });
}

test("the bounds themselves are accepted", (t) => {
  t.is(appDefinitionOf(withHealth({ liveIntervalMs: 1000 })).health.liveIntervalMs, 1000);
  t.is(appDefinitionOf(withHealth({ liveIntervalMs: 2 ** 31 - 1 })).health.liveIntervalMs, 2 ** 31 - 1);
});

test("secret references and the env file pass the edge as references; one saved before secrets existed has none", (t) => {
  const checked = appDefinitionOf({ ...WIRE, run: { command: ["node"], env: { A: "1" }, secretEnv: { DATABASE_URL: "DB_URL" }, envFile: "/etc/geoip/env" } });
  t.deepEqual(checked.run.secretEnv, { DATABASE_URL: "DB_URL" });
  t.is(checked.run.envFile, "/etc/geoip/env");
  t.deepEqual(appDefinitionOf(checked), checked, "what a snapshot saves reads back the same");
  const { secretEnv: _s, envFile: _f, ...savedByAnOlderAgent } = checked.run;
  t.like(appDefinitionOf({ ...checked, run: savedByAnOlderAgent as never }).run, { secretEnv: {}, envFile: undefined });
  t.is(appDefinitionOf(WIRE).run.envFile, undefined);
});

test("a secret reference or env file that is not one is refused at the edge", (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ command: ["node"], secretEnv: { "1X": "DB" } }, "references a secret by a name that is not an environment variable name"],
    [{ command: ["node"], secretEnv: { DB: "db-url" } }, "references a secret by a name that is not an environment variable name"],
    [{ command: ["node"], envFile: "etc/env" }, "has an env_file that is not an absolute path"],
  ];
  for (const [run, what] of cases) {
    const error = t.throws(() => appDefinitionOf({ ...WIRE, run: run as never }));
    t.is((error as { code?: string }).code, "ERR_INVALID_DEFINITION");
    t.is(error?.message, `the definition of geoip ${what}`);
  }
});

test("the proxy's names and TLS come off the wire checked, and a saved definition reads back the same", (t) => {
  const wire: cutover.v1.AppDefinition.$Properties = {
    ...WIRE,
    proxy: { listenPort: 443, virtualHost: { serverNames: ["geo.example.com"], defaultServer: true, tls: { certificatePath: "/etc/ssl/geo.pem", keySecret: "GEO_KEY" }, redirectHttpPort: 80, http2: true } },
  };
  const definition = appDefinitionOf(wire);
  t.deepEqual(definition.proxy, {
    listenPort: 443,
    protocol: "http",
    directives: [],
    serverNames: ["geo.example.com"],
    defaultServer: true,
    tls: { certificate: { path: "/etc/ssl/geo.pem" }, key: { secret: "GEO_KEY" } },
    redirectHttpPort: 80,
    http2: true,
  });
  t.deepEqual(appDefinitionOf(definition), definition);
  t.like(appDefinitionOf(WIRE).proxy, { serverNames: [], defaultServer: false, tls: undefined, redirectHttpPort: undefined, http2: false }, "an older coordinator sends none");
});

const BAD_VIRTUAL_HOSTS: [string, cutover.v1.VirtualHost.$Properties, RegExp][] = [
  ["a regex server name", { serverNames: ["~^.*$"] }, /server name nginx would not read as a host name/],
  ["a relative certificate path", { tls: { certificatePath: "etc/geo.pem", keyPath: "/k.pem" } }, /TLS certificate that is neither/],
  ["a redirect without tls", { redirectHttpPort: 80 }, /redirect_http port \(80\)/],
];
for (const [what, virtualHost, message] of BAD_VIRTUAL_HOSTS) {
  test(`refuses ${what} at the edge`, (t) => {
    const wire: cutover.v1.AppDefinition.$Properties = { ...WIRE, proxy: { listenPort: 443, virtualHost } };
    const error = t.throws(() => appDefinitionOf(wire));
    t.regex(error?.message ?? "", message);
  });
}
