import test from "ava";
import { TEST_PROBE_TOKEN } from "../nginx/test-probe-token.js";
import {
  effectiveCanaryPercent,
  lbRevision,
  parseLbHeader,
  parseLbState,
  serializeLbState,
  validateLbSite,
  type LbBackend,
  type LbSiteConfig,
} from "./config.js";
import { LbError } from "./errors.js";
import { lbIdent } from "./names.js";
import { renderLbSite } from "./render.js";

const b1: LbBackend = { host: "app-1", address: "10.0.0.1", port: 7001, weight: 1, state: "up", group: "stable" };
const b2: LbBackend = { host: "app-2", address: "10.0.0.2", port: 7001, weight: 1, state: "up", group: "canary" };
const site: LbSiteConfig = {
  app: "geoip",
  listenAddress: "10.0.0.9",
  listenPort: 80,
  switchMode: "reload",
  backends: [b1, b2],
  canary: { cookie: "cutover_canary", weightPercent: 10, pin: { kind: "header", name: "X-Canary", value: "yes" } },
};

const invalid = test.macro({
  exec(t, change: (config: LbSiteConfig) => LbSiteConfig, field: string) {
    const error = t.throws(() => renderLbSite(change(structuredClone(site)), { probeToken: TEST_PROBE_TOKEN }), { instanceOf: LbError });
    t.is(error.code, "ERR_LB_INVALID_SITE");
    t.true(error.message.includes(field), error.message);
  },
  title: (what = "") => `invalid: ${what}`,
});

test("no backends", invalid, (c) => ({ ...c, backends: [] }), "backends");
test("no up backend with a weight above 0", invalid, (c) => ({ ...c, backends: [{ ...b1, state: "drain" }, { ...b2, weight: 0 }] }), "at least one");
test("negative weight", invalid, (c) => ({ ...c, backends: [{ ...b1, weight: -1 }] }), "backends[0].weight");
test("fractional weight", invalid, (c) => ({ ...c, backends: [{ ...b1, weight: 1.5 }] }), "backends[0].weight");
test("weight as a string", invalid, (c) => ({ ...c, backends: [{ ...b1, weight: "2" as unknown as number }] }), "backends[0].weight");
test("weight above the maximum", invalid, (c) => ({ ...c, backends: [{ ...b1, weight: 10_001 }] }), "backends[0].weight");
test("unknown state", invalid, (c) => ({ ...c, backends: [{ ...b1, state: "off" as LbBackend["state"] }] }), "backends[0].state");
test("unknown group", invalid, (c) => ({ ...c, backends: [{ ...b1, group: "beta" as LbBackend["group"] }] }), "backends[0].group");
test("duplicate backend (same address:port)", invalid, (c) => ({ ...c, backends: [b1, { ...b2, address: b1.address, port: b1.port }] }), "duplicate backend");
test("duplicate backend (same host name)", invalid, (c) => ({ ...c, backends: [b1, { ...b2, host: b1.host }] }), "duplicate backend");
test("backend that is the LB itself", invalid, (c) => ({ ...c, backends: [b1, { ...b2, address: "10.0.0.9", port: 80 }] }), "proxy to itself");
test("host name with a space", invalid, (c) => ({ ...c, backends: [{ ...b1, host: "app 1" }] }), "backends[0].host");
test("backend address that is a host name", invalid, (c) => ({ ...c, backends: [{ ...b1, address: "app-1.local" }] }), "backends[0].address");
test("backend port 0", invalid, (c) => ({ ...c, backends: [{ ...b1, port: 0 }] }), "backends[0].port");
test("cookie name with '-' ($cookie_ variables cannot spell it)", invalid, (c) => ({ ...c, canary: { ...c.canary!, cookie: "cutover-canary" } }), "canary.cookie");
test("cookie name with ';' (would break the Set-Cookie)", invalid, (c) => ({ ...c, canary: { ...c.canary!, cookie: "a;b" } }), "canary.cookie");
test("empty cookie name", invalid, (c) => ({ ...c, canary: { ...c.canary!, cookie: "" } }), "canary.cookie");
test("canary percent above 100", invalid, (c) => ({ ...c, canary: { ...c.canary!, weightPercent: 101 } }), "canary.weightPercent");
test("canary percent with three decimals", invalid, (c) => ({ ...c, canary: { ...c.canary!, weightPercent: 12.345 } }), "canary.weightPercent");
test("pin value with a quote (would break out of a config or Lua string)", invalid, (c) => ({ ...c, canary: { ...c.canary!, pin: { kind: "header", name: "X-Canary", value: 'a"b' } } }), "canary.pin.value");
test("pin header name with a space", invalid, (c) => ({ ...c, canary: { ...c.canary!, pin: { kind: "header", name: "X Canary", value: "yes" } } }), "canary.pin.name");
test("pin of an unknown kind", invalid, (c) => ({ ...c, canary: { ...c.canary!, pin: { kind: "query" as "header", name: "beta", value: "yes" } } }), "canary.pin.kind");
test("app with a slash", invalid, (c) => ({ ...c, app: "../etc" }), "app");
test("listen address with a port", invalid, (c) => ({ ...c, listenAddress: "10.0.0.9:80" }), "listenAddress");
test("unknown switch mode", invalid, (c) => ({ ...c, switchMode: "hot" as LbSiteConfig["switchMode"] }), "switchMode");

test("a valid site passes, with or without canary", (t) => {
  t.notThrows(() => validateLbSite(site));
  const { canary: _canary, ...plain } = site;
  t.notThrows(() => validateLbSite(plain));
});

test("the state text reads back as written, and the header reads back the whole config", (t) => {
  const text = serializeLbState(site);
  t.is(
    text,
    `revision ${lbRevision(site)}\ncanary cutover_canary 10\npin header X-Canary yes\n` +
      "backend app-1 10.0.0.1 7001 1 up stable\nbackend app-2 10.0.0.2 7001 1 up canary\n",
  );
  t.deepEqual(parseLbState(text), { revision: lbRevision(site), backends: site.backends, canary: site.canary });
  t.deepEqual(parseLbHeader(renderLbSite(site, { probeToken: TEST_PROBE_TOKEN })), site);
  t.deepEqual(parseLbHeader(renderLbSite({ ...site, switchMode: "live" }, { probeToken: TEST_PROBE_TOKEN })), { ...site, switchMode: "live" });
  t.is(parseLbHeader("server { listen 80; }\n"), null);
  t.is(parseLbState("nonsense here\n"), null);
});

test("the revision changes with any part of the config and ignores key order", (t) => {
  const reordered = JSON.parse(JSON.stringify({ switchMode: site.switchMode, backends: site.backends, app: site.app, listenPort: 80, listenAddress: "10.0.0.9", canary: site.canary })) as LbSiteConfig;
  t.is(lbRevision(reordered), lbRevision(site));
  t.not(lbRevision({ ...site, backends: [b1, { ...b2, weight: 2 }] }), lbRevision(site));
  t.not(lbRevision({ ...site, canary: { ...site.canary!, weightPercent: 11 } }), lbRevision(site));
});

test("effective canary percent: the configured one, or 0/100 when a group has no backend taking requests", (t) => {
  t.is(effectiveCanaryPercent(site), 10);
  t.is(effectiveCanaryPercent({ ...site, backends: [b1, { ...b2, state: "drain" }] }), 0);
  t.is(effectiveCanaryPercent({ ...site, backends: [{ ...b1, weight: 0 }, b2] }), 100);
});

test("lbIdent is injective over names that differ in '-', '_' or case", (t) => {
  const apps = ["my-app", "my_app", "My-app", "myapp", "my__app", "my-_app", "a-1", "a_01", "A1", "a1"];
  const idents = apps.map(lbIdent);
  t.is(new Set(idents).size, apps.length);
  t.true(idents.every((ident) => /^[a-z0-9_]+$/.test(ident)));
  t.is(lbIdent("geoip"), "geoip");
});
