// HTTPS and name-based virtual hosts at each host's proxy, end to end: two apps on port 443
// of the same three hosts told apart by name (curl --resolve, as an operator checks), a
// blue/green deploy of one under TLS load that never disturbs the other, the HTTP redirect,
// a certificate rotation, and what the agents refuse before anything changes. The CA is the
// test's own.
import test from "ava";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { parse, stringify } from "yaml";
import { createTestCa, type IssuedCertificate, type TestCa } from "@cutover/testkit";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type Fleet } from "./harness/fleet.js";
import { appProcessesUnder } from "./harness/host-processes.js";
import { CUTOVER_BIN } from "./harness/processes.js";
import { loadThroughProxies } from "./harness/through-proxy.js";

const HTTPS = 443;
const GEO = "geo.example.test";
const MAPS = "maps.example.test";

interface DeployJson {
  status: string;
  hosts: { name: string; outcome: string; release: string | null; error: string | null }[];
}

/** The spec of an app on 443 by `name`, with its TLS section as given. */
function writeTlsSpec(fleet: Fleet, app: string, ports: { blue: number; green: number }, name: string, tls: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const path = writeExampleSpec(fleet.dir, { app, listen: HTTPS, ...ports }, `${app}.yml`);
  const spec = parse(readFileSync(path, "utf8")) as { proxy: Record<string, unknown> };
  Object.assign(spec.proxy, { server_names: [name], tls, ...extra });
  writeFileSync(path, stringify(spec));
  return path;
}

async function deploy(fleet: Fleet, spec: string, release: string) {
  const result = await fleet.coordinator.cliJson<DeployJson>(["deploy", spec, "--release", release]);
  return { ...result, why: `${result.stderr}\n${JSON.stringify(result.json.hosts?.map((h) => [h.name, h.outcome, h.error]))}` };
}

/** `curl --resolve NAME:PORT:ADDRESS https://NAME/…` against the test CA: status, the headers and the certificate's serial. */
function curl(ca: TestCa, address: string, name: string, url = `https://${name}/api/v1/geoip/1.2.3.4`): { status: number; headers: string; serial: string } {
  const caFile = join(ca.dir, "ca.pem");
  const port = new URL(url).port || (url.startsWith("https") ? "443" : "80");
  const out = execFileSync("curl", ["-sS", "-o", "/dev/null", "-D", "-", "-w", "%{http_code} %{certs}", "--cacert", caFile, "--resolve", `${name}:${port}:${address}`, url], { encoding: "utf8" });
  const headers = out.slice(0, out.indexOf("\r\n\r\n"));
  const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(headers)?.[1] ?? 0);
  return { status, headers, serial: url.startsWith("https") ? serialServed(ca, address, name, Number(port)) : "" };
}

/** The serial of the certificate the proxy at address:port presents for `name` (openssl s_client). */
function serialServed(ca: TestCa, address: string, name: string, port: number): string {
  const pem = execFileSync("openssl", ["s_client", "-connect", `${address}:${port}`, "-servername", name, "-CAfile", join(ca.dir, "ca.pem")], { input: "", encoding: "utf8", stdio: ["pipe", "pipe", "ignore"] });
  const begin = pem.indexOf("-----BEGIN CERTIFICATE-----");
  return new X509Certificate(pem.slice(begin, pem.indexOf("-----END CERTIFICATE-----") + 25)).serialNumber;
}

const serialOf = (issued: IssuedCertificate) => new X509Certificate(issued.certificate).serialNumber;

/** `cutover secret set APP NAME < file`, as an operator stores a certificate. */
function setSecret(fleet: Fleet, app: string, name: string, file: string): void {
  execFileSync(process.execPath, [CUTOVER_BIN, "secret", "set", app, name], {
    input: readFileSync(file),
    env: { ...process.env, CUTOVER_URL: fleet.coordinator.url, CUTOVER_TOKEN: fleet.coordinator.adminToken, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml" },
    stdio: ["pipe", "ignore", "pipe"],
  });
}

for (const mode of ["reload", "live"] as const) test.serial(`${mode} mode: two apps on 443 of three hosts by name: a TLS blue/green of one under load fails nothing and never touches the other; redirect, rotation, a bad key`, async (t) => {
  const fleet = await startFleet(t, { hosts: 3, switchMode: mode });
  const ca = createTestCa();
  t.teardown(() => ca.remove());
  const geoCert = ca.issue([GEO]);
  const mapsCert = ca.issue([MAPS]);
  // geo: files by path on each host (the hosts share this machine's disk); maps: the PEMs as its secrets.
  const geoTls = { certificate: geoCert.certificatePath, key: geoCert.keyPath };
  const geoSpec = writeTlsSpec(fleet, "geoip", { blue: 7001, green: 7002 }, GEO, geoTls, { redirect_http: true });
  setSecret(fleet, "maps", "MAPS_CERT", mapsCert.certificatePath);
  setSecret(fleet, "maps", "MAPS_KEY", mapsCert.keyPath);
  const mapsSpec = writeTlsSpec(fleet, "maps", { blue: 7011, green: 7012 }, MAPS, { certificate: { secret: "MAPS_CERT" }, key: { secret: "MAPS_KEY" } });

  for (const [spec, release] of [[geoSpec, "v1"], [mapsSpec, "m1"]] as const) {
    const result = await deploy(fleet, spec, release);
    t.is(result.exitCode, 0, result.why);
  }
  for (const address of fleet.addresses) {
    const geo = curl(ca, address, GEO);
    t.is(geo.status, 200);
    t.regex(geo.headers, /x-app-version: v1/i);
    t.notRegex(geo.headers, /x-cutover/i, "an ordinary client is told nothing of the proxy's internals");
    t.is(geo.serial, serialOf(geoCert));
    t.is(curl(ca, address, MAPS).serial, serialOf(mapsCert));
    const redirect = curl(ca, address, GEO, `http://${GEO}/a?b=1`);
    t.is(redirect.status, 301);
    t.regex(redirect.headers, new RegExp(`location: https://${GEO}/a\\?b=1`, "i"));
  }

  const geoLoad = loadThroughProxies(t, fleet.addresses, HTTPS, { retry: true, concurrency: 1, ratePerSec: 40, tls: { servername: GEO, ca: ca.certificate } });
  const mapsLoad = loadThroughProxies(t, fleet.addresses, HTTPS, { retry: true, concurrency: 1, ratePerSec: 40, tls: { servername: MAPS, ca: ca.certificate } });
  await Promise.all([geoLoad.completed(10), mapsLoad.completed(10)]);
  const v2 = await deploy(fleet, geoSpec, "v2");
  t.is(v2.exitCode, 0, v2.why);
  await geoLoad.completed(10);

  // Rotation: a new certificate at new paths is a deploy of the spec; nginx -t first, 0 failed requests.
  const rotated = ca.issue([GEO], "geo-rotated");
  writeFileSync(geoSpec, readFileSync(geoSpec, "utf8").replace(geoCert.certificatePath, rotated.certificatePath).replace(geoCert.keyPath, rotated.keyPath));
  const v3 = await deploy(fleet, geoSpec, "v3");
  t.is(v3.exitCode, 0, v3.why);
  await geoLoad.completed(10);
  for (const address of fleet.addresses) t.is(curl(ca, address, GEO).serial, serialOf(rotated), `${address} serves the rotated certificate`);

  // A key that is not the certificate's: nginx -t refuses it on the first host, the rollout stops, the old one serves.
  const stranger = ca.issue([GEO], "stranger");
  const badKey = join(ca.dir, "bad.key");
  copyFileSync(stranger.keyPath, badKey);
  chmodSync(badKey, 0o600);
  writeFileSync(geoSpec, readFileSync(geoSpec, "utf8").replace(rotated.keyPath, badKey));
  const bad = await deploy(fleet, geoSpec, "v4");
  t.is(bad.exitCode, 1, bad.why);
  t.regex(bad.why, /nginx -t rejected the new config.*\[emerg\].*SSL_CTX_use_PrivateKey.*key values mismatch/);
  await geoLoad.completed(10);
  for (const address of fleet.addresses) {
    const answer = curl(ca, address, GEO);
    t.regex(answer.headers, /x-app-version: v3/i);
    t.is(answer.serial, serialOf(rotated));
  }

  const [geoReports, mapsReports] = await Promise.all([Promise.all(geoLoad.runs.map((r) => r.stop())), Promise.all(mapsLoad.runs.map((r) => r.stop()))]);
  for (const [i, report] of geoReports.entries()) {
    t.log(`geo through ${fleet.addresses[i]}: ${report.requests} requests, ${report.failed} failed, ${report.retries} retries, ${JSON.stringify(report.answers)}`);
    t.deepEqual(report.failures, []);
    t.true((report.answers.v1 ?? 0) > 0 && (report.answers.v2 ?? 0) > 0 && (report.answers.v3 ?? 0) > 0, "the load saw every release");
  }
  for (const [i, report] of mapsReports.entries()) {
    t.log(`maps through ${fleet.addresses[i]}: ${report.requests} requests, ${report.failed} failed, ${report.retries} retries, ${JSON.stringify(report.answers)}`);
    t.deepEqual(report.failures, []);
    t.deepEqual(Object.keys(report.answers), ["m1"], "the other app only ever served its own release");
  }
});

test.serial("refused before anything changes on the host: a name another app claims on the port, a missing certificate, a world-readable key", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const ca = createTestCa();
  t.teardown(() => ca.remove());
  const cert = ca.issue([GEO, MAPS]);
  const tls = { certificate: cert.certificatePath, key: cert.keyPath };
  const first = await deploy(fleet, writeTlsSpec(fleet, "geoip", { blue: 7001, green: 7002 }, GEO, tls), "v1");
  t.is(first.exitCode, 0, first.why);

  const claimed = await deploy(fleet, writeTlsSpec(fleet, "maps", { blue: 7011, green: 7012 }, GEO, tls), "m1");
  t.is(claimed.exitCode, 1, claimed.why);
  t.regex(claimed.why, new RegExp(`app geoip and app maps cannot share ${fleet.addresses[0]!.replaceAll(".", "\\.")}:443: both claim the server name ${GEO.replaceAll(".", "\\.")}`));

  const missing = await deploy(fleet, writeTlsSpec(fleet, "maps", { blue: 7011, green: 7012 }, MAPS, { ...tls, certificate: join(ca.dir, "nope.pem") }), "m1");
  t.is(missing.exitCode, 1, missing.why);
  t.regex(missing.why, /proxy\.tls\.certificate \S+nope\.pem is refused by this host: no such file/);

  chmodSync(cert.keyPath, 0o644);
  const readable = await deploy(fleet, writeTlsSpec(fleet, "maps", { blue: 7011, green: 7012 }, MAPS, tls), "m1");
  t.is(readable.exitCode, 1, readable.why);
  t.regex(readable.why, /any user can read the private key \(mode 644\)/);

  t.deepEqual(readdirSync(join(fleet.agents[0]!.options.stateDir, "nginx", "sites")).sort(), ["geoip.conf", `port.${fleet.addresses[0]}-443.conf`], "no site of maps was written (geoip's, and the 404 server of the port it names)");
  t.is(appProcessesUnder(fleet.agents[0]!.options.stateDir).length, 1, "only geoip's instance runs: nothing of maps was started");
  t.is(curl(ca, fleet.addresses[0]!, GEO).status, 200, "the app already there serves on");
});
