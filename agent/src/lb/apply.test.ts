// Integration: real nginx (managed mode), real backends on their own loopback addresses,
// every answer read through the LB as a user would.
import test from "ava";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { PROBE_TOKEN_HEADER } from "../nginx/probe-token.js";
import { childPids } from "../nginx/proc.js";
import { applyLbSite, removeLbSite } from "./apply.js";
import { lbRevision } from "./config.js";
import { LbError } from "./errors.js";
import { lbControlSocket, lbSitePath } from "./names.js";
import { probeLb } from "./confirm.js";
import { readLbSite } from "./read.js";
import { renderLbSite } from "./render.js";
import { startLoad } from "@cutover/testkit";
import { closeServer, freePort, lbFixture, startBackend } from "./test-helpers.js";

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: first apply reloads; users reach an up backend, named by X-Cutover-Backend, under the config's revision`, async (t) => {
    const f = await lbFixture(t);
    const site = f.site(mode, { backends: [f.entry("a"), f.entry("b", { state: "drain" }), f.entry("c", { state: "down" })] });
    const result = await applyLbSite(f.runner, site);
    t.like(result, { app: "demo", mode, reloaded: true, revision: lbRevision(site) });
    t.true(result.durationMs > 0);
    for (let i = 0; i < 10; i += 1) {
      const answer = await f.get();
      t.like(answer, { status: 200, body: "a", backend: f.backend("a").key, revision: lbRevision(site) });
    }
    t.deepEqual(
      readdirSync(f.runner.paths.sitesDir),
      ["cutover-lb.demo.conf"],
      "no candidate or temp file beside the site, and the name cannot be an app site's",
    );
  });
}

const SPLIT_REQUESTS = 2000;
const SPLIT_TOLERANCE = 0.05;

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: weights 1:3 split ${SPLIT_REQUESTS} keep-alive requests 25%/75% within ±${SPLIT_TOLERANCE * 100} points`, async (t) => {
    const f = await lbFixture(t, { backends: ["a", "b"] });
    await applyLbSite(f.runner, f.site(mode, { backends: [f.entry("a", { weight: 1 }), f.entry("b", { weight: 3 })] }));
    const load = startLoad({
      address: f.address,
      port: f.listenPort,
      concurrency: 4,
      ratePerSec: 400,
      retry: false,
      maxRequests: SPLIT_REQUESTS,
      classify: (status, _headers, body) => (status === 200 ? body : null),
    });
    const report = await load.completed(SPLIT_REQUESTS).then(() => load.stop());
    t.log(`${mode}: ${JSON.stringify(report.answers)} over ${report.requests} requests`);
    t.is(report.failed, 0);
    const total = (report.answers.a ?? 0) + (report.answers.b ?? 0);
    t.is(total, SPLIT_REQUESTS);
    t.true(Math.abs((report.answers.b ?? 0) / total - 0.75) <= SPLIT_TOLERANCE, JSON.stringify(report.answers));

    // And the other way round, applied on the running site.
    await applyLbSite(f.runner, f.site(mode, { backends: [f.entry("a", { weight: 3 }), f.entry("b", { weight: 1 })] }));
    const after = await Promise.all(Array.from({ length: 40 }, () => f.get()));
    const a = after.filter((answer) => answer.body === "a").length;
    t.true(Math.abs(a / after.length - 0.75) <= 0.1, `a answered ${a} of ${after.length}`);
  });
}

test("live mode: weight, drain, canary and pin changes apply without a reload: master and worker pids unchanged, each confirmed by revision", async (t) => {
  const f = await lbFixture(t, { runner: { workerProcesses: 2 } });
  const first = await applyLbSite(f.runner, f.site("live"));
  t.true(first.reloaded, "the first apply writes the site, so it reloads");
  const pid = f.runner.masterPid()!;
  const workers = childPids(pid).sort();
  const changes = [
    f.site("live", { backends: [f.entry("a", { weight: 5 }), f.entry("b"), f.entry("c")] }),
    f.site("live", { backends: [f.entry("a"), f.entry("b", { state: "drain" }), f.entry("c", { state: "down" })] }),
    f.site("live", { backends: [f.entry("a"), f.entry("b"), f.entry("c", { group: "canary" })], canary: { cookie: "cutover_canary", weightPercent: 10 } }),
    f.site("live", {
      backends: [f.entry("a"), f.entry("b"), f.entry("c", { group: "canary" })],
      canary: { cookie: "cutover_canary", weightPercent: 50, pin: { kind: "header", name: "X-Beta", value: "1" } },
    }),
    f.site("live", { backends: [f.entry("c", { weight: 2 }), f.entry("a")] }),
  ];
  const durations: number[] = [];
  for (const site of changes) {
    const result = await applyLbSite(f.runner, site);
    t.like(result, { mode: "live", reloaded: false, handoverMs: 0, revision: lbRevision(site) });
    t.is(result.steps.reloading, undefined);
    durations.push(result.durationMs);
    const answer = await f.get();
    t.is(answer.revision, lbRevision(site));
    t.is((await readLbSite(f.runner, "demo")).dict?.revision, lbRevision(site));
  }
  t.is(f.runner.masterPid(), pid);
  t.deepEqual(childPids(pid).sort(), workers, "no worker churn");
  const answers = await Promise.all(Array.from({ length: 30 }, () => f.get()));
  t.deepEqual([...new Set(answers.map((a) => a.body))].sort(), ["a", "c"], "the last change (c:2, a:1, b gone) serves");
  t.log(`live applies: ${durations.map((d) => d.toFixed(2)).join(", ")} ms`);
});

test("live mode: a listen change takes the reload path; later changes are live again", async (t) => {
  const f = await lbFixture(t);
  await applyLbSite(f.runner, f.site("live"));
  const newPort = await freePort(f.address);
  const moved = await applyLbSite(f.runner, f.site("live", { listenPort: newPort, backends: [f.entry("b")] }));
  t.true(moved.reloaded);
  t.like(await probeLb(f.address, newPort), { status: 200, body: "b" });
  t.like(await f.get(), { error: "connect ECONNREFUSED " + `${f.address}:${f.listenPort}` }, "the old listen port is closed");
  const back = await applyLbSite(f.runner, f.site("live", { listenPort: newPort, backends: [f.entry("c")] }));
  t.false(back.reloaded);
  t.like(await probeLb(f.address, newPort), { status: 200, body: "c" });
});

test("live mode: the state survives an nginx restart (the file's copy serves an empty dict); readLbSite tells file, dict and serving apart", async (t) => {
  const f = await lbFixture(t);
  await applyLbSite(f.runner, f.site("live"));
  const last = f.site("live", { backends: [f.entry("a", { state: "drain" }), f.entry("b"), f.entry("c", { state: "down" })] });
  await applyLbSite(f.runner, last);
  t.like(await readLbSite(f.runner, "demo"), { file: last, serving: last, dict: { revision: lbRevision(last) } });
  await f.runner.stop();
  await f.runner.start();
  t.deepEqual(await readLbSite(f.runner, "demo"), { file: last, dict: null, serving: last });
  const answers = await Promise.all(Array.from({ length: 10 }, () => f.get()));
  t.true(answers.every((a) => a.body === "b" && a.revision === lbRevision(last)));
});

test("live mode: a site file written but never loaded (agent died before the reload) is loaded by the next apply", async (t) => {
  const f = await lbFixture(t);
  const site = f.site("live");
  writeFileSync(lbSitePath(f.runner, "demo"), renderLbSite(site, { controlSocket: lbControlSocket(f.runner, "demo"), probeToken: f.runner.probeToken }));
  t.like(await f.get(), { error: `connect ECONNREFUSED ${f.address}:${f.listenPort}` });
  const result = await applyLbSite(f.runner, site);
  t.true(result.reloaded, "the control socket was not there, so the apply reloaded");
  t.is(result.steps.testing, undefined, "the file was unchanged: tested when it was written, not again");
  t.like(await f.get(), { status: 200, revision: lbRevision(site) });
});

test("reload mode: applying the config already serving changes nothing and does not reload", async (t) => {
  const f = await lbFixture(t);
  await applyLbSite(f.runner, f.site("reload"));
  const pid = f.runner.masterPid()!;
  const workers = childPids(pid);
  const again = await applyLbSite(f.runner, f.site("reload"));
  t.like(again, { reloaded: false, handoverMs: 0 });
  t.deepEqual(childPids(pid), workers);
});

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: a candidate nginx -t rejects (invalid listen address): ERR_LB_TEST_FAILED with nginx's message, live file byte-identical, previous site serving`, async (t) => {
    const f = await lbFixture(t);
    await applyLbSite(f.runner, f.site(mode));
    const path = lbSitePath(f.runner, "demo");
    const before = readFileSync(path);
    const pid = f.runner.masterPid()!;
    const workers = childPids(pid);
    // Node's isIP accepts a zone id; nginx's listen does not: only nginx -t can say so.
    const error = await t.throwsAsync(applyLbSite(f.runner, f.site(mode, { listenAddress: "fe80::1%lo" })), {
      instanceOf: LbError,
      code: "ERR_LB_TEST_FAILED",
    });
    t.regex(error.output, /invalid IPv6 address in "\[fe80::1%lo\]:\d+" of the "listen" directive/);
    t.regex(error.message, /nginx -t rejected the new config/);
    t.regex(error.message, /invalid IPv6 address/, "the message carries nginx's words");
    t.false(error.rolledBack, "nothing live was touched, so nothing was rolled back");
    t.deepEqual(readFileSync(path), before);
    t.false(existsSync(`${path}.candidate`));
    t.deepEqual(childPids(pid), workers, "no reload");
    t.like(await f.get(), { status: 200 });
  });

  test(`${mode} mode: a backend that does not answer fails confirmation; the previous file${mode === "live" ? ", dict state" : ""} and backends are restored`, async (t) => {
    const f = await lbFixture(t);
    const good = f.site(mode, { backends: [f.entry("a")] });
    await applyLbSite(f.runner, good);
    const path = lbSitePath(f.runner, "demo");
    const before = readFileSync(path);
    const deadPort = await freePort(f.address);
    const bad = f.site(mode, { backends: [{ host: "dead", address: f.address, port: deadPort, weight: 1, state: "up", group: "stable" }] });
    const error = await t.throwsAsync(applyLbSite(f.runner, bad, { confirmTimeoutMs: 300 }), {
      instanceOf: LbError,
      code: "ERR_LB_CONFIRM_TIMEOUT",
    });
    t.true(error.rolledBack);
    t.is(error.rollbackError, undefined);
    t.regex(error.message, /status 502/);
    t.deepEqual(readFileSync(path), before);
    t.like(await f.get(), { status: 200, body: "a", revision: lbRevision(good) });
    if (mode === "live") t.is((await readLbSite(f.runner, "demo")).dict?.revision, lbRevision(good));
  });

  test(`${mode} mode: a backend that refuses connections among up ones costs no failed request (proxy_next_upstream)`, async (t) => {
    const f = await lbFixture(t, { backends: ["a"] });
    const deadPort = await freePort(f.address);
    await applyLbSite(f.runner, f.site(mode, { backends: [{ host: "dead", address: f.address, port: deadPort, weight: 1, state: "up", group: "stable" }, f.entry("a")] }));
    const answers = await Promise.all(Array.from({ length: 40 }, () => f.get()));
    t.true(answers.every((a) => a.status === 200 && a.body === "a" && a.backend === f.backend("a").key), JSON.stringify(answers.find((a) => a.status !== 200)));
  });

  test(`${mode} mode: removeLbSite tests, removes and reloads; the LB port closes; a second remove is a no-op`, async (t) => {
    const f = await lbFixture(t);
    await applyLbSite(f.runner, f.site(mode));
    t.true(await removeLbSite(f.runner, "demo"));
    t.false(existsSync(lbSitePath(f.runner, "demo")));
    t.false(existsSync(lbControlSocket(f.runner, "demo")), "nginx removed the control socket with the site");
    t.like(await f.get(), { error: `connect ECONNREFUSED ${f.address}:${f.listenPort}` });
    t.deepEqual(await readLbSite(f.runner, "demo"), { file: null, dict: null, serving: null });
    t.false(await removeLbSite(f.runner, "demo"));
  });
}

test("apply refuses an invalid site before touching anything, and live mode on a stopped nginx", async (t) => {
  const f = await lbFixture(t);
  await t.throwsAsync(applyLbSite(f.runner, f.site("reload", { backends: [] })), { instanceOf: LbError, code: "ERR_LB_INVALID_SITE" });
  t.false(existsSync(lbSitePath(f.runner, "demo")));
  await f.runner.stop();
  await t.throwsAsync(applyLbSite(f.runner, f.site("live")), { instanceOf: LbError, code: "ERR_LB_NOT_RUNNING" });
});

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: IPv6 listen and backend addresses (bracketed for nginx and for the Lua balancer)`, async (t) => {
    const f = await lbFixture(t, { backends: [] });
    const v6 = await startBackend("v6", "::1");
    t.teardown(() => closeServer(v6.server));
    const listenPort = await freePort("::1");
    const site = f.site(mode, {
      listenAddress: "::1",
      listenPort,
      backends: [{ host: "v6", address: "::1", port: v6.port, weight: 1, state: "up", group: "stable" }],
    });
    await applyLbSite(f.runner, site);
    t.like(await probeLb("::1", listenPort, "/", { [PROBE_TOKEN_HEADER]: f.runner.probeToken }), { status: 200, body: "v6", backend: `[::1]:${v6.port}` });
  });
}

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: an ordinary user is told neither the backend nor the revision; the agent's probes are, and no backend sees their token`, async (t) => {
    const f = await lbFixture(t);
    const site = f.site(mode);
    await applyLbSite(f.runner, site);
    const user = await f.getAsUser();
    t.is(user.status, 200);
    t.like(user, { backend: null, revision: null }, "no X-Cutover-* header for a user");
    const probe = await f.get();
    t.is(probe.revision, lbRevision(site));
    t.not(f.servedBy(probe), null);
    t.false(f.backends.some((b) => b.sawProbeToken), "the LB passes the probe token to no backend");
  });
}

