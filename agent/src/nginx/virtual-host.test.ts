// Integration: several apps on one port of one nginx by server_name, over TLS with a CA the
// test makes, the port's 404 server, clashes refused before anything changes.
import test, { type ExecutionContext } from "ava";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { createTestCa, type IssuedCertificate, type TestCa } from "@cutover/testkit";
import { NginxError } from "./errors.js";
import { removeSite, switchSite } from "./switch.js";
import { freePort, getWithHeaders, managedFixture, type Fixture } from "./test-helpers.js";
import { checkClaims, claimsOf, tlsFingerprint, type VirtualHost } from "./virtual-host.js";
import type { SiteConfig, SwitchMode } from "./site.js";

function withCa(t: ExecutionContext): TestCa {
  const ca = createTestCa();
  t.teardown(() => ca.remove());
  return ca;
}

function tlsHost(names: string[], issued: IssuedCertificate, extra: Partial<VirtualHost> = {}): VirtualHost {
  const tls = { certificate: issued.certificatePath, key: issued.keyPath, fingerprint: tlsFingerprint(issued.certificatePath, issued.keyPath) };
  return { serverNames: names, defaultServer: false, http2: false, tls, ...extra };
}

function site(f: Fixture, app: string, color: "blue" | "green", mode: SwitchMode, virtualHost: VirtualHost): SiteConfig {
  return { ...f.site(color, mode), app, virtualHost };
}

/** GET over TLS as a browser would: SNI and Host are `name`, the chain is checked against the test CA. */
function getTls(f: Fixture, ca: TestCa, name: string): Promise<{ status: number; body: string; headers: Record<string, unknown>; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: f.address, port: f.listenPort, path: "/", servername: name, headers: { host: name }, ca: ca.certificate, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, serial }));
    });
    req.on("error", reject);
    req.end();
  });
}

function serialOf(issued: IssuedCertificate): string {
  return new X509Certificate(issued.certificate).serialNumber;
}

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: two apps share one TLS port by name, each switched alone; users see no X-Cutover header`, async (t) => {
    const f = await managedFixture(t);
    const ca = withCa(t);
    const geo = ca.issue(["geo.example.test"]);
    const maps = ca.issue(["maps.example.test"]);
    await switchSite(f.runner, site(f, "geo", "blue", mode, tlsHost(["geo.example.test"], geo)));
    await switchSite(f.runner, site(f, "maps", "blue", mode, tlsHost(["maps.example.test"], maps)));
    t.like(await getTls(f, ca, "geo.example.test"), { status: 200, body: "blue" });
    t.like(await getTls(f, ca, "maps.example.test"), { status: 200, body: "blue" });

    const switched = await switchSite(f.runner, site(f, "geo", "green", mode, tlsHost(["geo.example.test"], geo)));
    t.is(switched.mode, mode);
    const user = await getTls(f, ca, "geo.example.test");
    t.is(user.body, "green");
    t.deepEqual(Object.keys(user.headers).filter((name) => name.startsWith("x-cutover")), []);
    t.like(await getTls(f, ca, "maps.example.test"), { body: "blue" }, "the other app still serves its own color");
    // A name no site claims: no certificate for it, so the handshake is refused.
    await t.throwsAsync(() => getTls(f, ca, "unknown.example.test"));
  });
}

test("a name another app holds on the port is refused with both names; nothing changes", async (t) => {
  const f = await managedFixture(t);
  const ca = withCa(t);
  const geo = ca.issue(["geo.example.test", "www.example.test"]);
  await switchSite(f.runner, site(f, "geo", "blue", "reload", tlsHost(["geo.example.test", "www.example.test"], geo)));
  const before = readdirSync(f.runner.paths.sitesDir).sort();
  const error = await t.throwsAsync(() => switchSite(f.runner, site(f, "maps", "green", "reload", tlsHost(["maps.example.test", "www.example.test"], geo))), { instanceOf: NginxError });
  t.is(error.code, "ERR_NGINX_VHOST_CLASH");
  t.is(error.message, `app geo and app maps cannot share ${f.address}:${f.listenPort}: both claim the server name www.example.test`);
  t.deepEqual(readdirSync(f.runner.paths.sitesDir).sort(), before);
  t.like(await getTls(f, ca, "www.example.test"), { body: "blue" });
});

test("claims that cannot share a port: one without names, plain beside TLS, two defaults", (t) => {
  const plain: VirtualHost = { serverNames: ["a.test"], defaultServer: true, http2: false };
  const clash = (a: VirtualHost | undefined, b: VirtualHost | undefined) =>
    t.throws(() => checkClaims([...claimsOf("app a", "127.0.0.9", 443, a), ...claimsOf("app b", "127.0.0.9", 443, b)]), { instanceOf: NginxError })?.message;
  t.regex(clash(undefined, plain) ?? "", /app a has no server_names, so it has the port to itself/);
  const tls = { certificate: "/c.pem", key: "/k.pem", fingerprint: "0".repeat(64) };
  t.regex(clash({ ...plain, serverNames: ["b.test"], defaultServer: false, tls }, plain) ?? "", /app a serves HTTPS there and app b plain HTTP/);
  t.regex(clash({ ...plain, serverNames: ["b.test"] }, plain) ?? "", /both are the port's default/);
  t.notThrows(() => checkClaims([...claimsOf("app a", "127.0.0.9", 443, plain), ...claimsOf("app b", "127.0.0.9", 443, { ...plain, serverNames: ["b.test"], defaultServer: false })]));
  t.notThrows(() => checkClaims([...claimsOf("app a", "127.0.0.9", 443, undefined), ...claimsOf("app b", "127.0.0.10", 443, undefined)]), "other addresses never clash");
});

test("a key that does not match its certificate is refused by nginx -t with nginx's words; the old certificate keeps serving", async (t) => {
  const f = await managedFixture(t);
  const ca = withCa(t);
  const good = ca.issue(["geo.example.test"]);
  const other = ca.issue(["geo.example.test"]);
  await switchSite(f.runner, site(f, "geo", "blue", "reload", tlsHost(["geo.example.test"], good)));
  const mismatched = { ...good, keyPath: other.keyPath };
  const error = await t.throwsAsync(() => switchSite(f.runner, site(f, "geo", "green", "reload", tlsHost(["geo.example.test"], mismatched))), { instanceOf: NginxError });
  t.is(error.code, "ERR_NGINX_TEST_FAILED");
  t.regex(error.output ?? "", /key values mismatch|SSL_CTX_use_PrivateKey/);
  const answer = await getTls(f, ca, "geo.example.test");
  t.like(answer, { body: "blue" });
  t.is(answer.serial, serialOf(good));
});

test("a rotated certificate is served after the switch that names it", async (t) => {
  const f = await managedFixture(t);
  const ca = withCa(t);
  const first = ca.issue(["geo.example.test"]);
  await switchSite(f.runner, site(f, "geo", "blue", "live", tlsHost(["geo.example.test"], first)));
  t.is((await getTls(f, ca, "geo.example.test")).serial, serialOf(first));
  // Rotated in place, same paths: the fingerprint in the site changes, so the switch reloads.
  const second = ca.issue(["geo.example.test"]);
  writeFileSync(first.certificatePath, second.certificate);
  writeFileSync(first.keyPath, second.key, { mode: 0o600 });
  const rotated = await switchSite(f.runner, site(f, "geo", "blue", "live", tlsHost(["geo.example.test"], first)));
  t.true(rotated.reloaded);
  t.is((await getTls(f, ca, "geo.example.test")).serial, serialOf(second));
});

test("redirect_http answers the names' plain HTTP with a 301 to HTTPS; the port's 404 server goes with the last named site", async (t) => {
  const f = await managedFixture(t);
  const ca = withCa(t);
  const redirectPort = await freePort(f.address);
  const geo = ca.issue(["geo.example.test"]);
  await switchSite(f.runner, site(f, "geo", "blue", "reload", tlsHost(["geo.example.test"], geo, { redirectHttpPort: redirectPort })));
  const redirected = await getWithHeaders(f.address, redirectPort, { host: "geo.example.test" }, "/a?b=1");
  t.is(redirected.status, 301);
  t.is(redirected.headers.location, `https://geo.example.test:${f.listenPort}/a?b=1`);
  t.is((await getWithHeaders(f.address, redirectPort, { host: "other.example.test" })).status, 404, "a name no site claims gets the port's 404");
  t.true(readdirSync(f.runner.paths.sitesDir).some((name) => name.startsWith("port.")));
  t.true(await removeSite(f.runner, "geo"));
  t.deepEqual(readdirSync(f.runner.paths.sitesDir), [], "no port server is left behind");
});

test("the agent's probe of a TLS site goes by address: no name, no verified chain needed", async (t) => {
  const f = await managedFixture(t);
  const ca = withCa(t);
  const geo = ca.issue(["geo.example.test"]);
  const nameless = tlsHost([], geo);
  await switchSite(f.runner, site(f, "geo", "blue", "reload", nameless));
  const switched = await switchSite(f.runner, site(f, "geo", "green", "reload", nameless));
  t.true(switched.reloaded);
  t.like(await getTls(f, ca, "geo.example.test"), { body: "green" });
  t.false(existsSync(`${f.runner.paths.sitesDir}/port.${f.address}-${f.listenPort}.conf`), "a site without names has the port: no 404 server");
});
