// Integration: real nginx (managed mode), real color servers, answers read through the proxy.
import test, { type ExecutionContext } from "ava";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { NginxError } from "./errors.js";
import { childPids, processTitle } from "./proc.js";
import { getLivePort, setLivePort, switchLivePort } from "./control.js";
import { readLivePort } from "./live-port.js";
import { renderSite } from "./render.js";
import { pendingPath } from "./site-files.js";
import { pretestSwitch, removeSite, switchSite, WARM_CONNECTIONS, warmSite } from "./switch.js";
import { PROBE_TOKEN_HEADER } from "./probe-token.js";
import { freePort, get, getWithHeaders, managedFixture } from "./test-helpers.js";

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: an ordinary client is told nothing of the upstream; the agent's probes are, and the app never sees their token`, async (t) => {
    const f = await managedFixture(t);
    await switchSite(f.runner, f.site("blue", mode));
    const switched = await switchSite(f.runner, f.site("green", mode));
    t.is(switched.mode, mode);
    const user = await getWithHeaders(f.address, f.listenPort);
    t.is(user.body, "green");
    t.deepEqual(Object.keys(user.headers).filter((name) => name.startsWith("x-cutover")), [], "no X-Cutover-* header for a user");
    const wrongToken = await getWithHeaders(f.address, f.listenPort, { [PROBE_TOKEN_HEADER]: "f".repeat(32) });
    t.is(wrongToken.headers["x-cutover-upstream"], undefined, "a guessed token is told nothing either");
    t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { body: "green", upstream: `${f.address}:${f.green.port}` });
    const seen = [...f.blue.requests, ...f.green.requests];
    t.true(seen.length > 0);
    t.false(seen.some((request) => request.probe), "nginx passes the probe token to no app");
  });
}

test("reload mode: blue → green; users get green and the header names green", async (t) => {
  const f = await managedFixture(t);
  const first = await switchSite(f.runner, f.site("blue", "reload"));
  t.true(first.reloaded);
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { status: 200, body: "blue", upstream: `${f.address}:${f.blue.port}` });

  const second = await switchSite(f.runner, f.site("green", "reload"));
  t.like(second, { app: "demo", mode: "reload", reloaded: true, previousPort: f.blue.port });
  t.true(second.durationMs > 0);
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { status: 200, body: "green", upstream: `${f.address}:${f.green.port}` });
  t.deepEqual(
    readdirSync(f.runner.paths.sitesDir),
    ["demo.conf"],
    "no candidate or temp file left beside the site",
  );
});

test("reload mode: a pretested switch reloads without running nginx -t again; a change in between is tested anew", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "reload"));
  const path = f.runner.sitePath("demo", "http");
  const live = readFileSync(path);
  const testRuns = () => statSync(f.runner.paths.testConf, { bigint: true }).mtimeNs;

  t.true(await pretestSwitch(f.runner, f.site("green", "reload")));
  t.deepEqual(readFileSync(path), live, "the live file is untouched");
  t.deepEqual(readdirSync(f.runner.paths.sitesDir), ["demo.conf"], "no candidate is left");
  t.like(await get(f.address, f.listenPort), { body: "blue" });
  const tested = testRuns();
  await switchSite(f.runner, f.site("green", "reload"));
  t.is(testRuns(), tested, "nginx -t did not run again for the same bytes");
  t.like(await get(f.address, f.listenPort), { body: "green" });

  t.true(await pretestSwitch(f.runner, f.site("blue", "reload")));
  const pretested = testRuns();
  await switchSite(f.runner, { ...f.site("blue", "reload"), app: "other", listenPort: await freePort(f.address) });
  await switchSite(f.runner, f.site("blue", "reload"));
  t.true(testRuns() > pretested, "another site changed since: tested again");
  t.like(await get(f.address, f.listenPort), { body: "blue" });

  t.false(await pretestSwitch(f.runner, f.site("green", "reload", { extraDirectives: ["gzip maybe"] })), "nginx -t says no");
  t.is(await pretestSwitch(f.runner, f.site("blue", "reload")), null, "nothing to change: nothing to test");
});

test("reload mode: switching to the color already live changes nothing and does not reload", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "reload"));
  const pid = f.runner.masterPid()!;
  const workers = childPids(pid);
  const again = await switchSite(f.runner, f.site("blue", "reload"));
  t.false(again.reloaded);
  t.deepEqual(childPids(pid), workers);
});

test("live mode: blue → green without a reload; master and workers unchanged; file fallback updated", async (t) => {
  const f = await managedFixture(t);
  const first = await switchSite(f.runner, f.site("blue", "live"));
  t.true(first.reloaded, "the first deploy writes the upstream, so it reloads");
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { body: "blue", upstream: `${f.address}:${f.blue.port}` });

  const pid = f.runner.masterPid()!;
  const workers = childPids(pid);
  const second = await switchSite(f.runner, f.site("green", "live"));
  t.like(second, { mode: "live", reloaded: false, previousPort: f.blue.port });
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { status: 200, body: "green", upstream: `${f.address}:${f.green.port}` });
  t.is(f.runner.masterPid(), pid);
  t.deepEqual(childPids(pid), workers, "no worker churn");

  t.is(await second.persisted, null, "the fallback file is written after the switch resolved");
  t.false(existsSync(pendingPath(f.runner.sitePath("demo", "http"))), "its pending copy is gone");
  const file = readFileSync(f.runner.sitePath("demo", "http"), "utf8");
  t.regex(file, new RegExp(`live-port=${f.green.port}\\b`));
  t.regex(file, new RegExp(`get\\("demo"\\) or ${f.green.port}\\b`), "the Lua fallback is the new port");
  t.deepEqual(await readLivePort(f.runner, "demo"), { file: f.green.port, dict: f.green.port, serving: f.green.port, mode: "live" });
});

test("live mode: one control call sets the dict and proves it: green gets the probe with the site's Host and no body", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const seen: string[] = [];
  await switchSite(f.runner, f.site("green", "live"), { confirmPath: "/health?from=agent", onTransition: ({ from, to }) => seen.push(`${from}>${to}`) });
  t.deepEqual(seen, ["planned>setting-port", "setting-port>done"], "no confirming step: the set proved itself");
  t.deepEqual(f.green.requests.at(-1), { method: "GET", url: "/health?from=agent", host: `${f.address}:${f.listenPort}`, contentLength: undefined, probe: false });
  t.like(await get(f.address, f.listenPort), { body: "green" });
});

test("live mode: warmSite leaves kept connections to green without moving users; the switch then opens none", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  t.deepEqual(await warmSite(f.runner, f.site("green", "live"), { confirmPath: "/health" }), Array(WARM_CONNECTIONS).fill(200));
  t.is(f.green.connections, WARM_CONNECTIONS);
  t.true(f.green.requests.every((r) => r.url === "/health" && r.host === `${f.address}:${f.listenPort}`));
  t.like(await get(f.address, f.listenPort), { body: "blue" }, "users still reach blue");
  await switchSite(f.runner, f.site("green", "live"), { confirmPath: "/health" });
  t.is(f.green.connections, WARM_CONNECTIONS, "the switch's probe took a warmed connection");
  t.like(await get(f.address, f.listenPort), { body: "green" });
  t.is(await warmSite(f.runner, f.site("blue", "reload")), null, "nothing to warm before a reload");
});

test("live mode: a probe that is not a URL path is refused by nginx before the dict changes", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const socket = f.runner.controlSocket;
  for (const probe of [{ path: "/x\r\nX-Evil: 1", host: "h" }, { path: "no-slash", host: "h" }, { path: "/ok", host: "a b" }]) {
    const error = await t.throwsAsync(switchLivePort(socket, "demo", f.green.port, probe), { instanceOf: NginxError, code: "ERR_NGINX_CONTROL_FAILED" });
    t.regex(error.message, /status 400/);
  }
  t.is(await getLivePort(socket, "demo"), f.blue.port);
  t.false(f.green.requests.some((r) => r.url.includes("Evil")));
});

test("live mode: the fallback port keeps the color across an nginx restart (empty dict)", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const green = await switchSite(f.runner, f.site("green", "live"));
  t.is(await green.persisted, null);
  await f.runner.stop();
  t.false(f.runner.isRunning());
  await f.runner.start();
  t.like(await readLivePort(f.runner, "demo"), { file: f.green.port, dict: null, serving: f.green.port });
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { body: "green", upstream: `${f.address}:${f.green.port}` });
});

test("live mode: two workers share the dict, every answer after the switch is green", async (t) => {
  const f = await managedFixture(t, "demo", { workerProcesses: 2 });
  await switchSite(f.runner, f.site("blue", "live"));
  await switchSite(f.runner, f.site("green", "live"));
  const answers = await Promise.all(Array.from({ length: 40 }, () => get(f.address, f.listenPort)));
  t.deepEqual([...new Set(answers.map((a) => a.body))], ["green"]);
});

test("live mode: a listen change takes the reload path, later switches are live again", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const newPort = await freePort(f.address);
  const moved = await switchSite(f.runner, f.site("green", "live", { listenPort: newPort }));
  t.true(moved.reloaded);
  t.like(await get(f.address, newPort), { body: "green" });
  await t.throwsAsync(get(f.address, f.listenPort), undefined, "the old listen port is closed");
  const back = await switchSite(f.runner, f.site("blue", "live", { listenPort: newPort }));
  t.false(back.reloaded);
  t.like(await get(f.address, newPort), { body: "blue" });
});

test("a candidate that fails nginx -t: live file byte-identical, old color serving, typed error with nginx's words", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "reload"));
  const path = f.runner.sitePath("demo", "http");
  const before = readFileSync(path);

  const error = await t.throwsAsync(
    switchSite(f.runner, f.site("green", "reload", { extraDirectives: ["gzip maybe"] })), { instanceOf: NginxError, code: "ERR_NGINX_TEST_FAILED" });
  t.regex(error.message, /invalid value "maybe" in "gzip" directive/);
  t.regex(error.output, /invalid value "maybe" in "gzip" directive/);
  t.deepEqual(readFileSync(path), before);
  t.false(existsSync(`${path}.candidate`));
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { body: "blue", upstream: `${f.address}:${f.blue.port}` });
});

test("live mode: a bad extra directive on a later switch is tested too and leaves blue serving", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const before = readFileSync(f.runner.sitePath("demo", "http"));
  const error = await t.throwsAsync(switchSite(f.runner, f.site("green", "live", { extraDirectives: ["gzip maybe"] })), {
    instanceOf: NginxError,
    code: "ERR_NGINX_TEST_FAILED",
  });
  t.regex(error.output, /invalid value "maybe" in "gzip" directive/);
  t.deepEqual(readFileSync(f.runner.sitePath("demo", "http")), before);
  t.like(await get(f.address, f.listenPort), { body: "blue" });
});

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: a color that does not answer fails confirmation and the previous color is restored`, async (t) => {
    const f = await managedFixture(t);
    await switchSite(f.runner, f.site("blue", mode));
    const path = f.runner.sitePath("demo", "http");
    const before = readFileSync(path);
    const deadPort = await freePort(f.address);

    const error = await t.throwsAsync(
      switchSite(f.runner, { ...f.site("green", mode), livePort: deadPort }, { confirmTimeoutMs: 300 }), { instanceOf: NginxError, code: "ERR_NGINX_CONFIRM_TIMEOUT" });
    t.true(error.rolledBack);
    t.regex(error.message, new RegExp(`${f.address}:${deadPort}`));
    t.deepEqual(readFileSync(path), before);
    t.false(existsSync(pendingPath(path)), "no pending fallback copy is left");
    t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { body: "blue", upstream: `${f.address}:${f.blue.port}` });
    t.like(await readLivePort(f.runner, "demo"), { serving: f.blue.port });
  });
}

test("reload that nginx refuses (listen port taken): ERR_NGINX_RELOAD_FAILED, file restored, old color serving", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "reload"));
  const before = readFileSync(f.runner.sitePath("demo", "http"));
  const squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, f.address, resolve));
  t.teardown(() => squatter.close());
  const taken = (squatter.address() as { port: number }).port;

  const error = await t.throwsAsync(switchSite(f.runner, f.site("green", "reload", { listenPort: taken })), {
    instanceOf: NginxError,
    code: "ERR_NGINX_RELOAD_FAILED",
  });
  t.regex(error.output, /bind\(\) to .* failed/);
  t.true(error.rolledBack);
  t.deepEqual(readFileSync(f.runner.sitePath("demo", "http")), before);
  t.like(await get(f.address, f.listenPort), { body: "blue" });
});

test("a new runner adopts the running master (agent restart) and keeps switching it", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const pid = f.runner.masterPid();

  const { createManagedRunner } = await import("./managed.js");
  const restarted = await createManagedRunner({ stateDir: f.stateDir });
  t.true(restarted.isRunning());
  t.deepEqual(await restarted.start(), { pid: pid!, adopted: true, reconfigured: false });
  t.like(await readLivePort(restarted, "demo"), { serving: f.blue.port, mode: "live" });

  const result = await switchSite(restarted, f.site("green", "live"));
  t.false(result.reloaded);
  t.like(await get(f.address, f.listenPort), { body: "green" });
  t.is(restarted.masterPid(), pid);
});

test("adopting a master whose nginx.conf is outdated reloads it with the current one", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "reload"));
  const { createManagedRunner } = await import("./managed.js");
  const restarted = await createManagedRunner({ stateDir: f.stateDir, workerProcesses: 2 });
  const started = await restarted.start();
  t.like(started, { adopted: true, reconfigured: true });
  // An old worker on its way out has no title (exiting, or a zombie not yet reaped): not accepting.
  const accepting = childPids(started.pid).filter((pid) => /worker process$/.test(processTitle(pid) ?? ""));
  t.is(accepting.length, 2);
  t.regex(readFileSync(restarted.paths.conf, "utf8"), /^worker_processes 2;$/m);
  t.like(await get(f.address, f.listenPort), { body: "blue" });
});

test("removeSite: the app stops being served and its live entry is gone", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  await switchSite(f.runner, f.site("green", "live"));
  t.true(await removeSite(f.runner, "demo"));
  t.false(existsSync(f.runner.sitePath("demo", "http")));
  await t.throwsAsync(get(f.address, f.listenPort));
  t.deepEqual(await readLivePort(f.runner, "demo"), { file: null, dict: null, serving: null, mode: null });
  t.false(await removeSite(f.runner, "demo"));
});

test("switching a stopped nginx is refused with ERR_NGINX_NOT_RUNNING and writes nothing", async (t) => {
  const f = await managedFixture(t);
  await f.runner.stop();
  const error = await t.throwsAsync(switchSite(f.runner, f.site("blue", "reload")), {
    instanceOf: NginxError,
    code: "ERR_NGINX_NOT_RUNNING",
  });
  t.regex(error.message, /not running; start it/);
  t.false(existsSync(f.runner.sitePath("demo", "http")));
});

test("tcp site: reload switch between two TCP colors through the stream module", async (t) => {
  const f = await managedFixture(t, "tcpdemo");
  t.true(f.runner.detectCapabilities().stream, "needs libnginx-mod-stream");
  const tcpPort = await freePort(f.address);
  const site = (color: "blue" | "green") => ({ ...f.site(color, "reload"), protocol: "tcp" as const, listenPort: tcpPort });
  await switchSite(f.runner, site("blue"));
  t.regex(readFileSync(f.runner.sitePath("tcpdemo", "tcp"), "utf8"), /proxy_pass cutover_tcpdemo;/);
  // The color servers speak HTTP, which passes through a stream proxy unchanged.
  t.like(await get(f.address, tcpPort), { body: "blue" });
  await switchSite(f.runner, site("green"));
  t.like(await get(f.address, tcpPort), { body: "green" });
});

test("each switch reports its states in order, once each", async (t) => {
  const f = await managedFixture(t);
  const seen: string[] = [];
  const onTransition = ({ from, to }: { from: string; to: string }) => seen.push(`${from}>${to}`);
  await switchSite(f.runner, f.site("blue", "live"), { onTransition });
  t.deepEqual(seen, [
    "planned>testing",
    "testing>activating",
    "activating>reloading",
    "reloading>retiring",
    "retiring>setting-port",
    "setting-port>confirming",
    "confirming>done",
  ]);
  seen.length = 0;
  const live = await switchSite(f.runner, f.site("green", "live"), { onTransition });
  t.deepEqual(seen, ["planned>setting-port", "setting-port>done"], "the fallback file is written after done");
  t.deepEqual(Object.keys(live.steps), ["planned", "setting-port"]);
  t.is(live.handoverMs, 0);
  seen.length = 0;
  await t.throwsAsync(switchSite(f.runner, f.site("blue", "reload", { extraDirectives: ["gzip maybe"] }), { onTransition }));
  t.deepEqual(seen, ["planned>testing", "testing>failed"]);
});

test("forceReload takes the reload path even when a live switch would do (reconcile after an agent restart)", async (t) => {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const forced = await switchSite(f.runner, f.site("green", "live"), { forceReload: true });
  t.true(forced.reloaded);
  t.true(forced.handoverMs > 0);
  t.like(await readLivePort(f.runner, "demo"), { file: f.green.port, dict: f.green.port, serving: f.green.port });
  t.like(await get(f.address, f.listenPort), { body: "green" });
});

// The agent dies between a live switch's confirmation and its fallback write: nginx keeps
// the dict on green, the file still names blue, the pending copy beside it names green.
async function diedBeforeTheFallbackWrite(t: ExecutionContext) {
  const f = await managedFixture(t);
  await switchSite(f.runner, f.site("blue", "live"));
  const path = f.runner.sitePath("demo", "http");
  writeFileSync(pendingPath(path), renderSite(f.site("green", "live"), f.runner.probeToken));
  await setLivePort(f.runner.controlSocket, "demo", f.green.port);
  const { createManagedRunner } = await import("./managed.js");
  const restarted = await createManagedRunner({ stateDir: f.stateDir });
  return { f, path, restarted };
}

test("an agent that died before a live switch's fallback write: the next reading finishes it, so an nginx restart keeps green", async (t) => {
  const { f, path, restarted } = await diedBeforeTheFallbackWrite(t);
  t.deepEqual(await readLivePort(restarted, "demo"), { file: f.green.port, dict: f.green.port, serving: f.green.port, mode: "live" });
  t.regex(readFileSync(path, "utf8"), new RegExp(`live-port=${f.green.port}\\b`));
  t.false(existsSync(pendingPath(path)));
  await f.runner.stop();
  await f.runner.start();
  t.like(await get(f.address, f.listenPort, "/", f.runner.probeToken), { body: "green", upstream: `${f.address}:${f.green.port}` });
});

test("a pending fallback copy the dict does not name (the switch did not take) is dropped and the file kept", async (t) => {
  const { f, path, restarted } = await diedBeforeTheFallbackWrite(t);
  await setLivePort(f.runner.controlSocket, "demo", f.blue.port);
  const before = readFileSync(path);
  t.like(await readLivePort(restarted, "demo"), { file: f.blue.port, dict: f.blue.port, serving: f.blue.port });
  t.deepEqual(readFileSync(path), before);
  t.false(existsSync(pendingPath(path)));
});
