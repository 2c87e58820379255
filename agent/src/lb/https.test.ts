// Integration: front LB sites over TLS with names on one port of one nginx (a CA the test
// makes): each app's LB answers its own name, a change of one is confirmed through TLS and
// leaves the other alone, a name twice is refused, and plain HTTP is redirected.
import test from "ava";
import { readdirSync } from "node:fs";
import { request } from "node:https";
import { createTestCa, type IssuedCertificate } from "@cutover/testkit";
import { tlsFingerprint, type VirtualHost } from "../nginx/virtual-host.js";
import { applyLbSite, removeLbSite } from "./apply.js";
import { LbError } from "./errors.js";
import { probeLb } from "./confirm.js";
import { lbFixture } from "./test-helpers.js";
import { freePort } from "../nginx/test-helpers.js";

function tlsHost(names: string[], issued: IssuedCertificate, extra: Partial<VirtualHost> = {}): VirtualHost {
  return { serverNames: names, defaultServer: false, http2: true, tls: { certificate: issued.certificatePath, key: issued.keyPath, fingerprint: tlsFingerprint(issued.certificatePath, issued.keyPath) }, ...extra };
}

/** What a browser gets for `name`: the body (the backend's name), the chain checked against the test CA. */
function browse(address: string, port: number, name: string, ca: string): Promise<{ status: number; body: string; headers: string[] }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, servername: name, headers: { host: name }, ca, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: Object.keys(res.headers) }));
    });
    req.on("error", reject);
    req.end();
  });
}

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: two apps' LBs share a TLS port by name; a change of one is confirmed through TLS and leaves the other serving`, async (t) => {
    const f = await lbFixture(t, { backends: ["a", "b", "c"] });
    const ca = createTestCa();
    t.teardown(() => ca.remove());
    const geo = ca.issue(["geo.example.test"]);
    const maps = ca.issue(["maps.example.test"]);
    await applyLbSite(f.runner, { ...f.site(mode), app: "geo", backends: [f.entry("a")], virtualHost: tlsHost(["geo.example.test"], geo) });
    await applyLbSite(f.runner, { ...f.site(mode), app: "maps", backends: [f.entry("c")], virtualHost: tlsHost(["maps.example.test"], maps) });
    t.like(await browse(f.address, f.listenPort, "geo.example.test", ca.certificate), { status: 200, body: "a" });
    t.like(await browse(f.address, f.listenPort, "maps.example.test", ca.certificate), { status: 200, body: "c" });

    const changed = await applyLbSite(f.runner, { ...f.site(mode), app: "geo", backends: [f.entry("b")], virtualHost: tlsHost(["geo.example.test"], geo) });
    t.is(changed.reloaded, mode === "reload", "a state change of a live TLS site is still a dict update");
    const user = await browse(f.address, f.listenPort, "geo.example.test", ca.certificate);
    t.is(user.body, "b");
    t.deepEqual(user.headers.filter((name) => name.startsWith("x-cutover")), [], "a user is told nothing of the LB's internals");
    t.like(await browse(f.address, f.listenPort, "maps.example.test", ca.certificate), { body: "c" });
  });
}

test("an LB claiming a name another LB holds on the port is refused; a redirect answers plain HTTP; removing the last named site takes the port's 404 server", async (t) => {
  const f = await lbFixture(t, { backends: ["a", "b"] });
  const ca = createTestCa();
  t.teardown(() => ca.remove());
  const geo = ca.issue(["geo.example.test"]);
  const redirectPort = await freePort(f.address);
  await applyLbSite(f.runner, { ...f.site("reload"), app: "geo", backends: [f.entry("a")], virtualHost: tlsHost(["geo.example.test"], geo, { redirectHttpPort: redirectPort }) });
  const error = await t.throwsAsync(() => applyLbSite(f.runner, { ...f.site("reload"), app: "maps", backends: [f.entry("b")], virtualHost: tlsHost(["geo.example.test"], geo) }), { instanceOf: LbError });
  t.is(error.code, "ERR_LB_VHOST_CLASH");
  t.regex(error.message, /lb geo and lb maps cannot share .*: both claim the server name geo\.example\.test/);
  const redirect = await probeLb(f.address, redirectPort, "/x", { host: "geo.example.test" });
  t.is(redirect.status, 301);
  t.true(await removeLbSite(f.runner, "geo"));
  t.deepEqual(readdirSync(f.runner.paths.sitesDir), []);
});
