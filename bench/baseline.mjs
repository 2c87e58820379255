// The naive baseline: the v1→v2 switch the seed's playbooks do by hand, on one
// host, under the same load as bench/swap.mjs, so failed-request counts stand
// side by side. No agent and no coordinator: the bench itself plays the three
// playbooks against a plain nginx (its own minimal config in a temp prefix, on
// a loopback address) proxying to the sample app:
//   1. start the new release on the idle port (7001 ↔ 7002), waiting only until
//      the port is open (the seed's one check; no health gate),
//   2. rewrite the port in nginx.conf and *restart* nginx: stop (SIGQUIT, as
//      Debian's nginx.service ExecStop does), wait for the master to exit, start,
//   3. stop the old release (SIGTERM).
//
//   npm run bench -- baseline [--swaps=10]
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { conditions, fmt, option, root, table, writeResult } from "./_lib.mjs";
import { alive, sleep } from "./_proc.mjs";

const { startLoad, randomLoopback } = await import("../packages/testkit/dist/index.js");

const LISTEN = 8080;
const PORTS = [7001, 7002];
const CONCURRENCY = 2;
/** Requests each client completes before and after a switch. */
const WARM_REQUESTS = 200;
const APP = join(root, "examples", "app", "server.mjs");
/** Bounds on every wait, so a broken step ends the run instead of hanging it. */
const WAIT_MS = 10_000;

function nginxConf(prefix, address, upstreamPort) {
  return `worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen ${address}:${LISTEN};
    location / { proxy_pass http://${address}:${upstreamPort}; }
  }
}
`;
}

/** Plain nginx in its own prefix: start, and stop the way `systemctl restart nginx` does (graceful quit, then wait). */
class PlainNginx {
  constructor(prefix, address) {
    Object.assign(this, { prefix, address, conf: join(prefix, "nginx.conf") });
    mkdirSync(join(prefix, "tmp"), { recursive: true });
  }

  writeConfig(upstreamPort) {
    writeFileSync(this.conf, nginxConf(this.prefix, this.address, upstreamPort));
  }

  nginx(args) {
    const result = spawnSync("nginx", ["-p", this.prefix, "-e", join(this.prefix, "error.log"), "-c", this.conf, ...args], { encoding: "utf8" });
    if (result.status !== 0) throw new Error(`nginx ${args.join(" ")} failed: ${result.stderr}`);
  }

  /** Returns once the master has bound its listen socket (nginx daemonizes after that). */
  start() {
    this.nginx([]);
  }

  pid() {
    const file = join(this.prefix, "nginx.pid");
    return existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : 0;
  }

  async stop(signal = "SIGQUIT") {
    const pid = this.pid();
    if (!pid || !alive(pid)) return;
    process.kill(pid, signal);
    const deadline = performance.now() + WAIT_MS;
    while (alive(pid)) {
      if (performance.now() > deadline) {
        process.kill(pid, "SIGKILL");
        break;
      }
      await sleep(5);
    }
  }
}

/** The sample app, detached in its own process group like a service would be. */
function startApp(address, port, version) {
  const child = spawn(process.execPath, [APP, "--port", String(port), "--host", address, "--version", version], { detached: true, stdio: "ignore" });
  child.unref();
  return child.pid;
}

function portOpen(address, port) {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

async function waitPortOpen(address, port) {
  const deadline = performance.now() + WAIT_MS;
  while (!(await portOpen(address, port))) {
    if (performance.now() > deadline) throw new Error(`${address}:${port} did not open within ${WAIT_MS} ms`);
    await sleep(10);
  }
}

async function stopApp(pid) {
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = performance.now() + WAIT_MS;
  while (alive(pid) && performance.now() < deadline) await sleep(5);
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // gone
  }
}

/** The swap bench's last figures, if it has run. */
function swapFigures() {
  const path = join(root, "bench", "results", "swap.json");
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch {
    return undefined;
  }
}

export async function run(args) {
  const swaps = option(args, "swaps", 10);
  console.log(`\n== baseline: ${swaps} playbook-style switches (start on idle port, rewrite nginx.conf, restart nginx, stop old), 1 host, 2+2 keep-alive clients on its nginx`);
  const prefix = mkdtempSync(join(tmpdir(), "cutover-bench-baseline-"));
  const address = randomLoopback();
  const nginx = new PlainNginx(prefix, address);
  const apps = new Set();
  let report;
  const restartsMs = [];
  const perSwap = [];
  try {
    let live = 0;
    apps.add(startApp(address, PORTS[live], "r0"));
    await waitPortOpen(address, PORTS[live]);
    nginx.writeConfig(PORTS[live]);
    nginx.start();
    let livePid = [...apps][0];
    const classify = (status, headers) => (status === 200 ? String(headers["x-app-version"]) : null);
    const base = { address, port: LISTEN, path: "/api/v1/geoip/1.2.3.4", concurrency: CONCURRENCY, ratePerSec: "unbounded", maxRequests: 10_000_000, classify };
    // One load run per switch (kept-alive connections warmed up first), so each switch's failures are known.
    for (let i = 1; i <= swaps; i++) {
      const retrying = startLoad({ ...base, retry: true });
      const plain = startLoad({ ...base, retry: false });
      await Promise.all([retrying.completed(WARM_REQUESTS), plain.completed(WARM_REQUESTS)]);
      const idle = 1 - live;
      // Playbook 1: the new release on the idle port; "is the port open" is the only check.
      const newPid = startApp(address, PORTS[idle], `r${i}`);
      apps.add(newPid);
      await waitPortOpen(address, PORTS[idle]);
      // Playbook 2: the port edited into nginx.conf, nginx restarted.
      nginx.writeConfig(PORTS[idle]);
      const started = performance.now();
      await nginx.stop();
      nginx.start();
      restartsMs.push(performance.now() - started);
      // Playbook 3: the old release stopped.
      await stopApp(livePid);
      apps.delete(livePid);
      livePid = newPid;
      live = idle;
      await Promise.all([retrying.completed(WARM_REQUESTS), plain.completed(WARM_REQUESTS)]);
      perSwap.push({ retrying: await retrying.stop(), nonRetrying: await plain.stop() });
    }
    const sum = (key) => {
      const reports = perSwap.map((p) => p[key]);
      return {
        requests: reports.reduce((a, r) => a + r.requests, 0),
        failed: reports.reduce((a, r) => a + r.failed, 0),
        socketErrors: reports.reduce((a, r) => a + r.socketErrors, 0),
        retries: reports.reduce((a, r) => a + r.retries, 0),
        failures: reports.flatMap((r) => r.failures),
        swapsWithFailures: reports.filter((r) => r.failed > 0).length,
      };
    };
    report = { retrying: sum("retrying"), nonRetrying: sum("nonRetrying") };
  } finally {
    await nginx.stop("SIGTERM");
    for (const pid of apps) await stopApp(pid);
    rmSync(prefix, { recursive: true, force: true });
  }
  const result = {
    swaps,
    restartMs: { total: restartsMs.reduce((a, b) => a + b, 0), median: restartsMs.sort((a, b) => a - b)[Math.floor(restartsMs.length / 2)] },
    retrying: { ...report.retrying, failures: report.retrying.failures.slice(0, 5) },
    nonRetrying: { ...report.nonRetrying, failures: report.nonRetrying.failures.slice(0, 5) },
  };
  const row = (label, r) => [label, r.swaps, r.retrying.requests, r.retrying.failed, r.retrying.swapsWithFailures ?? "-", r.nonRetrying.requests, r.nonRetrying.failed, r.nonRetrying.socketErrors, r.nonRetrying.swapsWithFailures ?? "-"];
  const rows = [row("playbooks (nginx restart, port-open check)", result)];
  const swap = swapFigures();
  for (const r of swap?.results ?? []) {
    rows.push(row(`cutover ${r.mode} (bench/swap.mjs, ${swap.conditions.date.slice(0, 16)})`, r));
  }
  console.log(table(["switch", "swaps", "requests (retry)", "failed", "swaps with failures", "requests (no retry)", "failed", "sock err", "swaps with failures"], rows));
  if (!swap) console.log("no cutover figures to compare with yet: run `npm run bench -- swap` (it writes bench/results/swap.json), then this again.");
  console.log(
    `nginx restart (quit → master gone → started) took ${fmt(result.restartMs.median, 0)} ms median; while it runs, new connections are refused and idle keep-alive connections are closed.\n` +
      "The load client opens a new connection at once after a failure, so a refused window counts many failed requests and the count swings with how\n" +
      "busy the machine is: 'swaps with failures' (each switch has its own load run) is the steadier figure. (The swap bench runs one load across all swaps.)\n" +
      `Same clients as the swap bench: 2 retrying + 2 non-retrying keep-alive clients (2 connections each) on the host's nginx, ${WARM_REQUESTS} requests each before and after every switch.`,
  );
  // The baseline has no budget of its own: it is what the "0 failed requests" budget (docs/architecture.md) is measured against.
  const budgets = [];
  console.log(`baseline: ${result.retrying.swapsWithFailures}/${swaps} switches failed requests of the retrying client (${result.retrying.failed} in all), ${result.nonRetrying.swapsWithFailures}/${swaps} of the non-retrying one (${result.nonRetrying.failed}); cutover's budget is 0 for the retrying client (see bench/swap.mjs).`);
  writeResult("baseline", { conditions: conditions({ hosts: 1, clients: "2 retrying + 2 non-retrying keep-alive", nginx: "plain, restart = SIGQUIT + start" }), result, swap: swap ? { date: swap.conditions.date, results: swap.results.map((r) => ({ mode: r.mode, swaps: r.swaps, retrying: r.retrying, nonRetrying: r.nonRetrying })) } : null, budgets });
  return true;
}
