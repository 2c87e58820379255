// System mode against a stand-in for the host's nginx: a master started from a main
// config in a temp dir laid out like /etc/nginx (conf.d include, pid file, error log),
// so the test touches no global file.
import test from "ava";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findModules, DEFAULT_MODULE_DIRS } from "./capabilities.js";
import { DEFAULT_NGINX_BINARY } from "./commands.js";
import { NginxError } from "./errors.js";
import { runCommand } from "./exec.js";
import { isNginxMaster, pollUntil, readPidFile } from "./proc.js";
import { switchSite } from "./switch.js";
import { CONTROL_CONF_NAME, createSystemRunner } from "./system.js";
import { closeServer, freePort, get, randomLoopback, startColor } from "./test-helpers.js";
import type { SiteConfig } from "./site.js";

async function hostNginx(t: import("ava").ExecutionContext) {
  const root = mkdtempSync(join(tmpdir(), "cutover-sys-"));
  const etc = join(root, "etc");
  const confDir = join(etc, "conf.d");
  mkdirSync(confDir, { recursive: true });
  mkdirSync(join(root, "run"));
  const modules = findModules(DEFAULT_MODULE_DIRS, existsSync);
  const main = join(etc, "nginx.conf");
  writeFileSync(
    main,
    [
      ...[modules.ndk, modules.lua].filter(Boolean).map((m) => `load_module ${m};`),
      "user root;",
      "worker_processes 1;",
      `pid ${join(root, "run", "nginx.pid")};`,
      `error_log ${join(root, "error.log")};`,
      "events { worker_connections 256; }",
      "http {",
      "    access_log off;",
      `    client_body_temp_path ${join(root, "body")};`,
      `    proxy_temp_path ${join(root, "proxy")};`,
      `    fastcgi_temp_path ${join(root, "fastcgi")};`,
      `    uwsgi_temp_path ${join(root, "uwsgi")};`,
      `    scgi_temp_path ${join(root, "scgi")};`,
      `    include ${confDir}/*.conf;`,
      "}",
      "",
    ].join("\n"),
  );
  const started = await runCommand({ file: DEFAULT_NGINX_BINARY, args: ["-c", main] });
  t.is(started.exitCode, 0, started.stderr);
  const pidFile = join(root, "run", "nginx.pid");
  const pid = await pollUntil(() => readPidFile(pidFile) ?? undefined, { timeoutMs: 5_000, intervalMs: 5 });
  t.teardown(async () => {
    if (pid !== undefined) {
      process.kill(pid, "SIGTERM");
      await pollUntil(() => (isNginxMaster(pid) ? undefined : true), { timeoutMs: 5_000, intervalMs: 5 });
    }
    rmSync(root, { recursive: true, force: true });
  });
  const runner = await createSystemRunner({
    mainConf: main,
    confDir,
    errorLog: join(root, "error.log"),
    controlSocket: join(root, "run", "control.sock"),
  });
  return { root, main, confDir, runner };
}

async function colors(t: import("ava").ExecutionContext) {
  const address = randomLoopback();
  // The colors' ports first: a port picked alongside could be the next one the kernel hands a color.
  const [blue, green] = await Promise.all([startColor("blue", address), startColor("green", address)]);
  const listenPort = await freePort(address);
  t.teardown(async () => Promise.all([closeServer(blue.server), closeServer(green.server)]));
  const site = (color: "blue" | "green", switchMode: SiteConfig["switchMode"], extra: Partial<SiteConfig> = {}): SiteConfig => ({
    app: "geoip",
    protocol: "http",
    listenAddress: address,
    listenPort,
    upstreamAddress: address,
    livePort: color === "blue" ? blue.port : green.port,
    switchMode,
    ...extra,
  });
  return { address, listenPort, blue, green, site };
}

test("system mode: pid file from the main config, capabilities from what it loads", async (t) => {
  const { runner, root } = await hostNginx(t);
  t.is(runner.pidFile, join(root, "run", "nginx.pid"));
  t.true(runner.isRunning());
  t.deepEqual(runner.detectCapabilities(), { lua: true, stream: false }, "stream needs a stream include dir");
  t.is(runner.sitePath("geoip", "http"), join(root, "etc", "conf.d", "cutover-geoip.conf"));
  t.throws(() => runner.sitePath("geoip", "tcp"), { instanceOf: NginxError, code: "ERR_NGINX_STREAM_UNSUPPORTED" });
});

test("system mode: reload switch writes conf.d/cutover-<app>.conf and serves green", async (t) => {
  const { runner, confDir } = await hostNginx(t);
  const c = await colors(t);
  await switchSite(runner, c.site("blue", "reload"));
  const result = await switchSite(runner, c.site("green", "reload"));
  t.true(result.reloaded);
  t.like(await get(c.address, c.listenPort, "/", runner.probeToken), { body: "green", upstream: `${c.address}:${c.green.port}` });
  t.true(existsSync(join(confDir, "cutover-geoip.conf")));
  t.false(existsSync(join(confDir, CONTROL_CONF_NAME)), "reload mode needs no live-dict file");
});

test("system mode: live switch adds the cutover-owned dict file once, then switches without reload", async (t) => {
  const { runner, confDir } = await hostNginx(t);
  const c = await colors(t);
  const first = await switchSite(runner, c.site("blue", "live"));
  t.true(first.reloaded);
  t.regex(readFileSync(join(confDir, CONTROL_CONF_NAME), "utf8"), /lua_shared_dict cutover_live 1m;/);
  const second = await switchSite(runner, c.site("green", "live"));
  t.false(second.reloaded);
  t.like(await get(c.address, c.listenPort), { body: "green" });
});

test("system mode: a failing candidate leaves conf.d as it was", async (t) => {
  const { runner, confDir } = await hostNginx(t);
  const c = await colors(t);
  await switchSite(runner, c.site("blue", "reload"));
  const before = readFileSync(join(confDir, "cutover-geoip.conf"));
  const error = await t.throwsAsync(switchSite(runner, c.site("green", "reload", { extraDirectives: ["gzip maybe"] })), {
    instanceOf: NginxError,
    code: "ERR_NGINX_TEST_FAILED",
  });
  t.regex(error.output, /invalid value "maybe" in "gzip" directive/);
  t.deepEqual(readFileSync(join(confDir, "cutover-geoip.conf")), before);
  t.like(await get(c.address, c.listenPort), { body: "blue" });
});

test("system mode: a main config that does not include conf.d is named in the error", async (t) => {
  const { runner, main } = await hostNginx(t);
  const c = await colors(t);
  writeFileSync(main, readFileSync(main, "utf8").replace(/^\s*include .*conf\.d.*$/m, ""));
  await t.throwsAsync(switchSite(runner, c.site("blue", "reload")), { instanceOf: NginxError, code: "ERR_NGINX_CONF_DIR_NOT_INCLUDED" });
});
