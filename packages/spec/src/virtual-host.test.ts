// proxy and lb: names, TLS, the HTTP redirect and HTTP/2, read into the spec or refused
// with the issue an operator would read.
import test from "ava";
import { stringify } from "yaml";
import { parseSpec, secretNamesOf, SpecError } from "./index.js";
import type { SpecIssue } from "./index.js";

const FILE = "/srv/geoip/cutover.yml";
const exists = (): null => null;
const BASE = {
  app: "geoip",
  run: { command: ["node", "server.js"], env: { TOKEN: { secret: "API_TOKEN" } } },
  ports: { blue: 7001, green: 7002 },
  proxy: { listen: 443 },
  health: { http: { path: "/health" } },
  hosts: { role: "geoip" },
};
const TLS = { certificate: "/etc/ssl/geoip.pem", key: "/etc/ssl/private/geoip.key" };

function parse(edit: (spec: any) => void) {
  const spec: any = structuredClone(BASE);
  edit(spec);
  return parseSpec(stringify(spec), { file: FILE, exists });
}

function issuesOf(edit: (spec: any) => void): SpecIssue[] {
  try {
    parse(edit);
  } catch (error) {
    if (error instanceof SpecError) return error.issues;
    throw error;
  }
  throw new Error("the spec was accepted");
}

test("a proxy with names, TLS from paths, the redirect and HTTP/2 reads into the spec", (t) => {
  const spec = parse((s) => Object.assign(s.proxy, { server_names: ["GeoIP.example.com", "*.geo.example.com"], default: true, tls: TLS, redirect_http: true, http2: true }));
  t.deepEqual(spec.proxy, {
    listen: 443,
    protocol: "http",
    serverNames: ["geoip.example.com", "*.geo.example.com"],
    defaultServer: true,
    tls: TLS,
    redirectHttp: 80,
    http2: true,
  });
});

test("a proxy without the fields keeps its old shape: the port to itself, plain HTTP", (t) => {
  t.deepEqual(parse(() => undefined).proxy, { listen: 443, protocol: "http" });
});

test("TLS files may be secrets of the app; the deploy then needs them too", (t) => {
  const spec = parse((s) => (s.proxy.tls = { certificate: { secret: "GEOIP_CERT" }, key: { secret: "GEOIP_KEY" } }));
  t.deepEqual(spec.proxy.tls, { certificate: { secret: "GEOIP_CERT" }, key: { secret: "GEOIP_KEY" } });
  t.deepEqual(secretNamesOf(spec), ["API_TOKEN", "GEOIP_CERT", "GEOIP_KEY"]);
});

test("a name claimed twice in one list is refused, naming it", (t) => {
  t.deepEqual(issuesOf((s) => (s.proxy.server_names = ["a.example.com", "A.example.com"])), [
    { field: "proxy.server_names[1]", expected: "a name not already in the list (a.example.com is claimed twice)", got: '"A.example.com"' },
  ]);
});

test("names nginx would read as a regex or a catch-all are refused", (t) => {
  const issues = issuesOf((s) => (s.proxy.server_names = ["~^(.+)$", "_", "a b.example.com"]));
  t.deepEqual(issues.map((issue) => issue.field), ["proxy.server_names[0]", "proxy.server_names[1]", "proxy.server_names[2]"]);
});

test("a relative certificate path and a key with '..' are refused", (t) => {
  const issues = issuesOf((s) => (s.proxy.tls = { certificate: "etc/ssl/geoip.pem", key: "/etc/ssl/../geoip.key" }));
  t.deepEqual(issues.map((issue) => issue.field), ["proxy.tls.certificate", "proxy.tls.key"]);
  t.regex(issues[0]!.expected, /absolute path on each host.*or \{ secret: NAME \}/);
});

test("a TLS section without its key is refused", (t) => {
  t.deepEqual(issuesOf((s) => (s.proxy.tls = { certificate: "/etc/ssl/geoip.pem" })).map((i) => [i.field, i.got]), [["proxy.tls.key", "nothing"]]);
});

test("redirect_http and http2 need tls; the redirect cannot be the HTTPS port itself", (t) => {
  t.deepEqual(issuesOf((s) => Object.assign(s.proxy, { redirect_http: true, http2: true })).map((i) => i.field), ["proxy.redirect_http", "proxy.http2"]);
  t.deepEqual(issuesOf((s) => Object.assign(s.proxy, { tls: TLS, redirect_http: 443 })), [
    { field: "proxy.redirect_http", expected: "a port other than listen (443), which serves HTTPS", got: "443" },
  ]);
});

test("default needs server_names: an app without names already has the port", (t) => {
  t.deepEqual(issuesOf((s) => (s.proxy.default = true)).map((i) => i.field), ["proxy.default"]);
});

test("a tcp proxy takes none of the HTTP fields", (t) => {
  const issues = issuesOf((s) => Object.assign(s.proxy, { protocol: "tcp", server_names: ["a.example.com"], tls: TLS }));
  t.deepEqual(issues.map((i) => i.field), ["proxy.server_names", "proxy.tls"]);
  t.regex(issues[0]!.expected, /protocol is tcp/);
});

test("TLS at both the proxy and the lb is refused: the LBs pass plain HTTP to the hosts", (t) => {
  t.deepEqual(issuesOf((s) => Object.assign(s, { proxy: { listen: 8080, tls: TLS }, lb: { hosts: { role: "lb" }, listen: 443, tls: TLS } })).map((i) => i.field), ["proxy.tls"]);
});

test("lb takes names and TLS by path, not by secret", (t) => {
  const spec = parse((s) => (s.lb = { hosts: { role: "lb" }, listen: 443, server_names: ["geoip.example.com"], tls: TLS }));
  t.deepEqual(spec.lb, { hosts: { role: "lb" }, listen: 443, drainTimeoutMs: 30_000, serverNames: ["geoip.example.com"], tls: TLS });
  const issues = issuesOf((s) => (s.lb = { hosts: { role: "lb" }, listen: 443, tls: { certificate: { secret: "C" }, key: "/k.pem" } }));
  t.deepEqual(issues.map((i) => i.field), ["lb.tls.certificate"]);
  t.regex(issues[0]!.expected, /secrets are for proxy\.tls/);
});
