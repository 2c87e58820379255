// Coordinator scale: thousands of simulated agents (bench/_sim-agents.mjs: real
// protocol, real Ed25519 identities, a few child processes) against one real
// `cutover server` process. Per fleet size: coordinator RSS per session,
// heartbeat processing CPU, Ping fan-out round trips, a no-op deploy across all
// hosts, and recovery from a reconnect storm (kill -9 and restart).
//
//   npm run bench -- scale [--sessions=1000,5000,10000] [--quiet=15] [--pings=5] [--profile=1] [--legacy=0] [--store=postgres]
//     [--coordinator=PATH/bin/cutover.js]   (another build, to measure a change)
//
// --profile=1 runs the coordinator under the inspector and prints the top
// self-time functions of each phase (profiles saved under /tmp/cutover-bench-profiles/).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { freemem, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { conditions, fmt, option, root, table, writeResult } from "./_lib.mjs";
import { cpuSeconds, hardNofile, MiB, rssBytes, sleep, spawnDaemon } from "./_proc.mjs";
import { attachProfiler, printSummary, saveProfile, summarizeProfile } from "./_profile.mjs";

const { quantile, median, freePort } = await import("../packages/testkit/dist/index.js");

const CUTOVER_BIN = join(root, "coordinator", "bin", "cutover.js");
const SIM_AGENTS = join(root, "bench", "_sim-agents.mjs");
const SIM_PROCESSES = 4;
const HEARTBEAT_INTERVAL_S = 5;
const TOKEN_CONCURRENCY = 16;
/** The real agent's default reconnect cap (agent/src/config.ts DEFAULT_MAX_BACKOFF). */
const MAX_BACKOFF_MS = 15_000;
/** First connects are spread over this many ms per session (a fleet boots over seconds, not in one instant). */
const RAMP_MS_PER_SESSION = 0.5;
const PROFILE_DIR = "/tmp/cutover-bench-profiles";
const SIM_LABELS = { role: "sim" };
const DEFAULT_SIZES = [1000, 5000, 10_000];
/** How long the no-op deploy may take before the bench reports how far it got and moves on: 20 s + 5 ms per host. */
const deployWaitMs = (n) => 20_000 + 5 * n;
const API_TIMEOUT_MS = 60_000;
/** When the whole suite runs (`npm run bench`), sizes that would push it past its 15 minutes are skipped. */
const SUITE_BUDGET_S = 15 * 60;
/** Rough time one size takes here (enrolment, settle, quiet window, pings, storm, deploy), and what the swap bench after this one needs. */
const estimatedSeconds = (n) => 40 + n * 0.015;
const SWAP_RESERVE_S = 240;
/** The budgets of docs/architecture.md ("Budgets"). */
const BUDGET = { rssPerSessionBytes: 30 * 1024, fanoutP99Ms: 100, stormAllOnlineMs: 30_000 };

async function api(url, token, method, path, body, timeoutMs = API_TIMEOUT_MS) {
  const response = await fetch(url + path, {
    method,
    // A coordinator stuck in a long synchronous stretch must not hang the bench.
    signal: AbortSignal.timeout(timeoutMs),
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined && { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

/** Polls `check` until it returns a truthy value; throws after `timeoutMs`. */
async function waitFor(what, check, timeoutMs, intervalMs = 100) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

async function mapLimit(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

/** A `cutover server` process on a fixed port and data dir, restartable; optionally under the inspector. */
class Coordinator {
  constructor({ dataDir, port, logFile, profile, bin, storeUrl }) {
    Object.assign(this, { dataDir, port, logFile, profile, bin, storeUrl });
    this.url = `http://127.0.0.1:${port}`;
    this.proc = undefined;
    this.profiler = undefined;
  }

  get pid() {
    return this.proc.pid;
  }

  async start() {
    const logFrom = existsSync(this.logFile) ? statSync(this.logFile).size : 0;
    const inspect = this.profile ? [`--inspect-brk=127.0.0.1:${await freePort()}`] : [];
    const args = [...inspect, this.bin, "server", "--data-dir", this.dataDir, "--listen", `127.0.0.1:${this.port}`, "--heartbeat-interval", `${HEARTBEAT_INTERVAL_S}s`, ...(this.storeUrl ? ["--store", this.storeUrl] : [])];
    this.proc = spawnDaemon(args, { logFile: this.logFile, env: { CUTOVER_LOG_LEVEL: "info" }, nofile: true });
    if (this.profile) {
      // Profiling from the first line: the first phase of each process ends with the process's first phase.end().
      this.profiler = await attachProfiler(Number(inspect[0].split(":").at(-1)));
      await this.profiler.start();
      await this.profiler.resume();
    }
    // Its own line says when it listens (an API call could queue behind a reconnect storm).
    await waitFor("the coordinator to listen", async () => readFileSync(this.logFile).subarray(logFrom).includes("cutover server listening on"), 20_000, 10);
    this.adminToken = readFileSync(join(this.dataDir, "admin-token"), "utf8").trim();
  }

  health() {
    return fetch(`${this.url}/v1/health`).then((r) => r.json());
  }

  call(method, path, body, timeoutMs) {
    return api(this.url, this.adminToken, method, path, body, timeoutMs);
  }

  async stop(signal = "SIGTERM") {
    this.profiler?.close();
    this.profiler = undefined;
    if (!this.proc) return;
    const timer = setTimeout(() => this.proc.child.kill("SIGKILL"), 10_000);
    await this.proc.kill(signal);
    clearTimeout(timer);
  }
}

/** The simulated agents: SIM_PROCESSES children, each running a share of the sessions. */
class SimFleet {
  children = [];
  nextId = 1;

  start(coordinatorUrl, agents, rampMs) {
    const url = `${coordinatorUrl.replace(/^http/, "ws")}/v1/agent`;
    for (let i = 0; i < SIM_PROCESSES; i++) {
      const share = agents.filter((_, j) => j % SIM_PROCESSES === i);
      // Open-files limit at the hard limit: thousands of sockets in one process.
      const child = spawn("bash", ["-c", 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, SIM_AGENTS], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
      child.on("error", () => {});
      child.send({ type: "start", url, localAddress: `127.77.0.${10 + i}`, labels: SIM_LABELS, maxBackoffMs: MAX_BACKOFF_MS, agents: share, rampMs });
      this.children.push(child);
    }
  }

  request(type) {
    return Promise.all(
      this.children.map(
        (child) =>
          new Promise((resolve, reject) => {
            const id = this.nextId++;
            // A child busy with thousands of reconnecting sessions on a loaded machine can take a while.
            const timer = setTimeout(() => reject(new Error(`simulated agents did not answer ${type} within 60 s`)), 60_000);
            const onMessage = (message) => {
              if (message.id !== id) return;
              clearTimeout(timer);
              child.off("message", onMessage);
              resolve(message);
            };
            child.on("message", onMessage);
            child.send({ type, id });
          }),
      ),
    );
  }

  /** Counters of all children added up (maps merged, lastOnlineAt the latest). */
  async stats() {
    const all = await this.request("stats");
    const total = { memoryRssBytes: 0 };
    for (const { counters, memoryRss } of all) {
      total.memoryRssBytes += memoryRss;
      for (const [key, value] of Object.entries(counters)) {
        if (key === "lastOnlineAt") total[key] = Math.max(total[key] ?? 0, value);
        else if (typeof value === "number") total[key] = (total[key] ?? 0) + value;
        else {
          total[key] ??= {};
          for (const [k, v] of Object.entries(value)) total[key][k] = (total[key][k] ?? 0) + v;
        }
      }
    }
    return total;
  }

  reset() {
    return this.request("reset");
  }

  async stop() {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = once(child, "exit");
        try {
          child.send({ type: "stop" });
        } catch {
          // channel already closed
        }
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
    this.children = [];
  }
}

const count = (map) => Object.values(map ?? {}).reduce((a, b) => a + b, 0);

function noopSpec() {
  return stringify({
    app: "simapp",
    run: { command: ["node", "server.mjs", "--port", "${PORT}"], stop_timeout: "5s" },
    ports: { blue: 7001, green: 7002 },
    proxy: { listen: 8080, protocol: "http" },
    health: { http: { path: "/health_check", expect_status: 200 }, interval: "100ms", timeout: "1s", healthy_threshold: 2, deadline: "15s" },
    hosts: SIM_LABELS,
    strategy: { type: "bluegreen", batch: "100%", max_failures: 0, keep_previous: "10m" },
  });
}

/** Starts/stops one profile per phase when profiling; a no-op otherwise. */
function phases(coordinator, size, results) {
  return {
    async begin() {
      if (coordinator.profiler) await coordinator.profiler.start();
    },
    async end(name) {
      if (!coordinator.profiler) return;
      const profile = await coordinator.profiler.stop();
      mkdirSync(PROFILE_DIR, { recursive: true });
      const path = join(PROFILE_DIR, `scale-${size}-${name}.cpuprofile`);
      saveProfile(path, profile);
      const summary = summarizeProfile(profile);
      printSummary(`${size} sessions, ${name} (${path})`, summary);
      results[name] = summary;
    },
  };
}

async function runSize(n, shared) {
  const coordinator = new Coordinator(shared);
  const sims = new SimFleet();
  const result = { sessions: n, simProcesses: SIM_PROCESSES, loadavgAtStart: loadavg()[0] };
  const profiles = {};
  try {
    // The profiler is already running from --inspect-brk; the first phase ends at "connect".
    await coordinator.start();
    const phase = phases(coordinator, n, profiles);
    // The fresh process, idle, before any token or session: the baseline the sessions add to.
    await sleep(1000);
    const rssBefore = rssBytes(coordinator.pid);
    const enrolled = new Set((await coordinator.call("GET", "/v1/hosts")).map((h) => h.name));
    const names = Array.from({ length: n }, (_, i) => `sim-${String(i + 1).padStart(5, "0")}`);
    const fresh = names.filter((name) => !enrolled.has(name));
    let started = performance.now();
    const tokens = await mapLimit(fresh, TOKEN_CONCURRENCY, async () => (await coordinator.call("POST", "/v1/tokens/enrollment", {})).token);
    result.enrollmentTokens = { created: fresh.length, ms: performance.now() - started, reusedKeys: n - fresh.length };
    const tokenOf = new Map(fresh.map((name, i) => [name, tokens[i]]));

    // All sessions online.
    started = performance.now();
    // Every `legacyEvery`-th host acts as an agent from before "commands.mac" (signed commands).
    sims.start(coordinator.url, names.map((name, i) => ({ name, token: tokenOf.get(name), legacy: shared.legacyEvery > 0 && i % shared.legacyEvery === 0 })), n * RAMP_MS_PER_SESSION);
    await waitFor(`${n} sessions online`, async () => (await coordinator.health()).agentsOnline >= n, 120_000 + n * 20, 200);
    result.connect = { ms: performance.now() - started, rampMs: n * RAMP_MS_PER_SESSION };
    const afterConnect = await sims.stats();
    result.connect.refusals = afterConnect.refusals;
    result.connect.upgradeRejects = afterConnect.upgradeRejects;
    result.connect.enrolled = afterConnect.enrolled;
    await phase.end("enroll+connect");

    // Let every session heartbeat at least once, then a quiet window of heartbeats only.
    await sleep(HEARTBEAT_INTERVAL_S * 1000 + 1000);
    const rssOnline = rssBytes(coordinator.pid);
    await phase.begin();
    const beatsBefore = (await sims.stats()).heartbeats;
    const cpuBefore = cpuSeconds(coordinator.pid);
    started = performance.now();
    await sleep(shared.quietMs);
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(coordinator.pid) - cpuBefore;
    const quietStats = await sims.stats();
    const beats = quietStats.heartbeats - beatsBefore;
    await phase.end("heartbeats");
    const rssQuiet = rssBytes(coordinator.pid);
    result.rss = {
      beforeBytes: rssBefore,
      onlineBytes: rssOnline,
      afterQuietBytes: rssQuiet,
      perSessionBytes: (Math.max(rssOnline, rssQuiet) - rssBefore) / n,
    };
    result.heartbeats = {
      windowS: seconds,
      perSec: beats / seconds,
      cpuPercentOfCore: (100 * cpu) / seconds,
      cpuMsPer1000: beats > 0 ? (1000 * cpu * 1000) / beats : Number.NaN,
      sessionsDropped: count(quietStats.dropsWhileOnline),
    };

    // Ping fan-out: POST /v1/hosts/ping to every online host, several times.
    await phase.begin();
    const calls = [];
    for (let i = 0; i < shared.pings; i++) {
      started = performance.now();
      const cpu0 = cpuSeconds(coordinator.pid);
      const answers = await coordinator.call("POST", "/v1/hosts/ping", {});
      // CPU the coordinator spent on the call (and on whatever else arrived meanwhile, mostly heartbeats): robust to a busy machine.
      calls.push({ wallMs: performance.now() - started, cpuMs: 1000 * (cpuSeconds(coordinator.pid) - cpu0), answers });
    }
    await phase.end("ping");
    const trips = calls.flatMap((c) => c.answers.map((a) => a.roundTripMs));
    result.fanout = {
      calls: calls.length,
      hostsPerCall: median(calls.map((c) => c.answers.length)),
      notOk: calls.reduce((sum, c) => sum + c.answers.filter((a) => !a.ok).length, 0),
      p50Ms: median(trips),
      p99Ms: quantile(trips, 0.99),
      maxMs: Math.max(...trips),
      p99PerCallMs: calls.map((c) => quantile(c.answers.map((a) => a.roundTripMs), 0.99)),
      wallMedianMs: median(calls.map((c) => c.wallMs)),
      cpuMsMedian: median(calls.map((c) => c.cpuMs)),
      cpuUsPerHost: (1000 * median(calls.map((c) => c.cpuMs))) / n,
      wallMaxMs: Math.max(...calls.map((c) => c.wallMs)),
    };

    // Reconnect storm: kill -9, start again on the same port and data dir, every agent back at once.
    await sims.reset();
    const killedAt = Date.now();
    started = performance.now();
    await coordinator.stop("SIGKILL");
    await coordinator.start();
    const listenMs = performance.now() - started;
    await waitFor(`${n} sessions online again`, async () => (await coordinator.health()).agentsOnline >= n, 120_000 + n * 20, 50);
    const onlineMs = performance.now() - started;
    const stormCpuMs = 1000 * cpuSeconds(coordinator.pid);
    await phase.end("storm");
    const hosts = await coordinator.call("GET", "/v1/hosts");
    const storm = await sims.stats();
    result.storm = {
      restartToListenMs: listenMs,
      killToAllOnlineMs: onlineMs,
      listenToAllOnlineMs: onlineMs - listenMs,
      agentsLastWelcomeAfterKillMs: storm.lastOnlineAt - killedAt,
      // The new process's whole CPU time from its start to all online (start-up included).
      cpuMs: stormCpuMs,
      onlinePerApi: hosts.filter((h) => h.state === "online").length,
      refusals: storm.refusals,
      upgradeRejects: storm.upgradeRejects,
      handshakeTimeouts: storm.handshakeTimeouts,
      upgradeTimeouts: storm.upgradeTimeouts,
      // ECONNREFUSED while the coordinator is down is expected; resets are the killed sessions.
      socketErrors: storm.connectErrors,
      // Sessions the coordinator turned away: a Refusal frame or an HTTP error instead of the upgrade.
      sessionsRefused: count(storm.refusals) + count(storm.upgradeRejects),
      // Attempts that failed without a refusal (the coordinator too busy to finish them within the agent's 10 s); the agent retries.
      attemptsTimedOut: storm.upgradeTimeouts + storm.handshakeTimeouts,
    };
    await sleep(HEARTBEAT_INTERVAL_S * 1000 + 1000);
    result.rss.afterStormBytes = rssBytes(coordinator.pid);

    // A no-op deploy, last (a deployment left running would be resumed by a restarted coordinator):
    // every host answers at once, as an agent whose app boots in no time would.
    await phase.begin();
    started = performance.now();
    const deployCpu0 = cpuSeconds(coordinator.pid);
    const created = await coordinator.call("POST", "/v1/deployments", { spec: noopSpec(), specFile: "simapp.yml", release: `r${n}` });
    const postMs = performance.now() - started;
    let final;
    const deadline = performance.now() + deployWaitMs(n);
    while (performance.now() < deadline) {
      const d = await coordinator.call("GET", `/v1/deployments/${created.id}`, undefined, Math.max(1000, Math.round(deadline - performance.now()))).catch(() => undefined);
      final = d ?? final;
      if (d && d.state !== "running" && d.state !== "rolling_back") break;
      await sleep(250);
    }
    final ??= created;
    const wallMs = performance.now() - started;
    const deployCpuMs = 1000 * (cpuSeconds(coordinator.pid) - deployCpu0);
    await phase.end("deploy");
    const finished = final.state !== "running" && final.state !== "rolling_back";
    // A deployment left running would be resumed by the next start of this store: the next size gets a fresh one.
    if (!finished) shared.taintedStore = true;
    result.deploy = {
      state: finished ? final.state : `still ${final.state} after ${deployWaitMs(n) / 1000} s`,
      finished,
      hosts: final.hosts.length,
      succeededHosts: final.hosts.filter((h) => h.outcome === "succeeded").length,
      durationMs: finished ? final.durationMs : Number.NaN,
      postMs,
      wallMs,
      cpuMs: deployCpuMs,
      cpuUsPerHost: (1000 * deployCpuMs) / n,
      error: final.error,
    };

    const last = await sims.stats();
    result.simRssBytes = last.memoryRssBytes;
    result.commandsRefused = last.commandsRefused;
    result.commandsTaken = { mac: last.macCommands, signed: last.signedCommands };
    result.welcomesRefused = last.welcomesRefused;
    if (shared.profile) result.profiles = profiles;
    return result;
  } finally {
    await sims.stop();
    await coordinator.stop();
  }
}

const onlineRss = (r) => Math.max(r.rss.onlineBytes, r.rss.afterQuietBytes);

/** RSS one more session costs: the slope between consecutive sizes (fixed costs of a warmed-up process cancel out). */
function marginalPerSession(done) {
  for (let i = 1; i < done.length; i++) {
    const [a, b] = [done[i - 1], done[i]];
    b.rss.marginalPerSessionBytes = (onlineRss(b) - onlineRss(a)) / (b.sessions - a.sessions);
  }
}

function budgetLines(results) {
  const lines = [];
  const verdict = (ok) => (ok ? "ok  " : "MISS");
  for (const r of results) {
    if (r.error) {
      lines.push(`MISS ${r.sessions} sessions: did not complete: ${r.error}`);
      continue;
    }
    const kb = r.rss.perSessionBytes / 1024;
    const marginal = r.rss.marginalPerSessionBytes / 1024;
    lines.push(`${verdict(kb < 30)} ${r.sessions} sessions: coordinator RSS ${fmt(kb)} KB per session over the fresh process${Number.isFinite(marginal) ? `, ${fmt(marginal)} KB per added session` : ""} (budget < 30 KB)`);
    lines.push(`${verdict(r.fanout.p99Ms < BUDGET.fanoutP99Ms)} ${r.sessions} sessions: Ping fan-out p99 ${fmt(r.fanout.p99Ms)} ms (budget < 100 ms)`);
    if (r.fanout.notOk > 0) lines.push(`MISS ${r.sessions} sessions: ${r.fanout.notOk} Ping answers not OK (${r.commandsRefused} commands the simulated agents refused)`);
    lines.push(`${verdict(r.storm.killToAllOnlineMs < BUDGET.stormAllOnlineMs)} ${r.sessions} sessions: all online ${fmt(r.storm.killToAllOnlineMs / 1000)} s after kill -9 in the reconnect storm (budget < 30 s)`);
    lines.push(`${verdict(r.storm.sessionsRefused === 0)} ${r.sessions} sessions: ${r.storm.sessionsRefused} sessions refused in the reconnect storm (${JSON.stringify({ ...r.storm.refusals, ...r.storm.upgradeRejects })}; budget 0), ${r.storm.attemptsTimedOut} attempts timed out and were retried`);
    if (r.deploy.state !== "succeeded") lines.push(`MISS ${r.sessions} sessions: no-op deploy ${r.deploy.state}: ${r.deploy.succeededHosts}/${r.deploy.hosts} hosts done${r.deploy.error ? `: ${r.deploy.error}` : ""}`);
    if (r.heartbeats.sessionsDropped > 0) lines.push(`MISS ${r.sessions} sessions: ${r.heartbeats.sessionsDropped} sessions dropped during the quiet window`);
  }
  return lines;
}

export async function run(args) {
  const sizesArg = args.find((a) => a.startsWith("--sessions="));
  const sizes = sizesArg ? sizesArg.slice("--sessions=".length).split(",").map(Number) : DEFAULT_SIZES;
  const quietMs = option(args, "quiet", 15) * 1000;
  const pings = option(args, "pings", 5);
  const profile = option(args, "profile", 0) === 1;
  // Percent of the simulated agents that do not announce "commands.mac" and get Ed25519-signed commands.
  const legacyPercent = option(args, "legacy", 0);
  const legacyEvery = legacyPercent > 0 ? Math.round(100 / legacyPercent) : 0;
  // Another build of the coordinator (e.g. a patched copy), to measure a change against the same simulated fleet.
  const bin = args.find((a) => a.startsWith("--coordinator="))?.slice("--coordinator=".length) ?? CUTOVER_BIN;
  console.log(`\n== scale: ${sizes.join(", ")} simulated agent sessions (${SIM_PROCESSES} processes) against one coordinator, heartbeat ${HEARTBEAT_INTERVAL_S}s${profile ? ", PROFILING (figures carry the profiler's overhead)" : ""}`);
  const dir = mkdtempSync(join(tmpdir(), "cutover-bench-scale-"));
  // --store=postgres: the store is a throwaway PostgreSQL cluster on loopback (one database per size), as HA members share one.
  const store = args.find((a) => a.startsWith("--store="))?.slice("--store=".length) ?? "sqlite";
  if (!["sqlite", "postgres"].includes(store)) throw new Error(`--store must be sqlite or postgres, got "${store}"`);
  const postgres = store === "postgres" ? await (await import("../packages/testkit/dist/index.js")).startPostgres() : undefined;
  if (postgres) console.log("   store: PostgreSQL (a throwaway cluster on loopback, fsync off)");
  const shared = { dataDir: join(dir, "data"), port: await freePort(), logFile: join(dir, "coordinator.log"), quietMs, pings, profile, legacyEvery, bin, storeUrl: postgres?.createDatabase() };
  const results = [];
  try {
    for (const n of sizes) {
      // About 2 MB per session across coordinator and simulated agents, with room to spare.
      if (freemem() < n * 2 * MiB + 2048 * MiB) {
        console.log(`skipping ${n} sessions: ${Math.round(freemem() / MiB)} MiB free is not enough`);
        continue;
      }
      // One descriptor per session in the coordinator, plus its store, logs and listeners.
      if (n + 256 > hardNofile()) {
        console.log(`skipping ${n} sessions: the open-files hard limit (${hardNofile()}) is too low for the coordinator`);
        continue;
      }
      const suite = !process.argv.slice(2).some((a) => !a.startsWith("--"));
      if (suite && !sizesArg && process.uptime() + estimatedSeconds(n) + SWAP_RESERVE_S > SUITE_BUDGET_S) {
        console.log(`skipping ${n} sessions: it would take the whole suite past ${SUITE_BUDGET_S / 60} minutes (run \`npm run bench -- scale\` for every size)`);
        continue;
      }
      if (shared.taintedStore) {
        shared.dataDir = join(dir, `data-${n}`);
        shared.storeUrl = postgres?.createDatabase();
        shared.taintedStore = false;
        console.log(`   (a fresh store: the previous size's deployment did not finish and would be resumed; every host enrols again)`);
      }
      console.log(`-- ${n} sessions`);
      try {
        results.push(await runSize(n, shared));
      } catch (error) {
        console.log(`   ${n} sessions failed: ${error.message}`);
        results.push({ sessions: n, error: error.message });
      }
    }
  } finally {
    postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const done = results.filter((r) => !r.error);
  marginalPerSession(done);
  console.log(
    table(
      ["sessions", "load avg", "connect s", "RSS before MB", "RSS online MB", "KB/session", "KB/added session", "heartbeats/s", "hb CPU % core", "CPU ms/1000 hb", "ping p50 ms", "ping p99 ms", "ping wall ms", "ping CPU µs/host", "no-op deploy ms", "deploy CPU µs/host", "storm: listen→all online ms", "kill→all online ms", "refused", "timed out"],
      done.map((r) => [
        r.sessions, fmt(r.loadavgAtStart), fmt(r.connect.ms / 1000), fmt(r.rss.beforeBytes / MiB), fmt(onlineRss(r) / MiB), fmt(r.rss.perSessionBytes / 1024), fmt(r.rss.marginalPerSessionBytes / 1024),
        fmt(r.heartbeats.perSec, 0), fmt(r.heartbeats.cpuPercentOfCore), fmt(r.heartbeats.cpuMsPer1000, 0),
        fmt(r.fanout.p50Ms), fmt(r.fanout.p99Ms), fmt(r.fanout.wallMedianMs, 0), fmt(r.fanout.cpuUsPerHost, 0), r.deploy.finished ? fmt(r.deploy.durationMs, 0) : `>${deployWaitMs(r.sessions)} (${r.deploy.succeededHosts} done)`, fmt(r.deploy.cpuUsPerHost, 0),
        fmt(r.storm.listenToAllOnlineMs, 0), fmt(r.storm.killToAllOnlineMs, 0), r.storm.sessionsRefused, r.storm.attemptsTimedOut,
      ]),
    ),
  );
  console.log(
    `conditions: ${SIM_PROCESSES} simulated-agent processes on the same 2 cores as the coordinator; coordinator at log level info, heartbeat ${HEARTBEAT_INTERVAL_S}s;\n` +
      `RSS per session = (RSS with all online and heartbeating − RSS of the fresh process) / sessions; per added session = the slope from the previous size;\n` +
      `heartbeat CPU = coordinator utime+stime over a ${quietMs / 1000} s window with nothing else happening; load avg = the machine's 1-minute load when the size started;\n` +
      `ping = POST /v1/hosts/ping roundTripMs over ${pings} calls: per host, from the coordinator sending its command to its answer (the call sends 256 per event-loop turn); wall = the whole call, i.e. until the last host answered;\n` +
      `commands: every session does the real handshake (X25519 share, Welcome signature checked) and checks each command's HMAC (or, with --legacy=PCT, that share of sessions gets and checks Ed25519-signed commands);\n` +
      `CPU µs/host = coordinator CPU time during the call / hosts (heartbeats arriving meanwhile included): unlike latencies, it does not grow when other work shares the machine;\n` +
      `no-op deploy = POST /v1/deployments (batch 100%) to 'succeeded' as the store records it, each host answering with the 6 step events and an OK outcome;\n` +
      `storm = kill -9 and restart on the same port and data dir; agents reconnect with the real agent's backoff (250 ms base, 15 s cap, jitter);\n` +
      `refused = Refusal frames + HTTP errors (503) instead of the upgrade; timed out = attempts the coordinator did not finish within the agent's 10 s (retried).`,
  );
  for (const r of done) {
    console.log(
      `${r.sessions} sessions: fan-out p50 ${fmt(r.fanout.p50Ms)} ms, p99 ${fmt(r.fanout.p99Ms)} ms, wall ${fmt(r.fanout.wallMedianMs, 0)} ms (median call), ${fmt(r.fanout.cpuUsPerHost, 0)} µs CPU/host; ` +
        `storm: ${r.storm.sessionsRefused} refused, all online ${fmt(r.storm.killToAllOnlineMs / 1000)} s after kill -9 (${fmt(r.storm.listenToAllOnlineMs / 1000)} s after listen), ${r.storm.attemptsTimedOut} attempts timed out; ` +
        `memory ${fmt(r.rss.perSessionBytes / 1024)} KB/session; commands taken: ${r.commandsTaken.mac} MAC, ${r.commandsTaken.signed} signed, ${r.commandsRefused} refused`,
    );
  }
  const budgets = budgetLines(results);
  console.log(budgets.join("\n"));
  writeResult("scale", { conditions: conditions({ simProcesses: SIM_PROCESSES, heartbeatIntervalS: HEARTBEAT_INTERVAL_S, quietWindowS: quietMs / 1000, pingCalls: pings, profiled: profile, simAgentsLegacyPercent: legacyPercent, coordinatorBin: bin }), results, budgets });
  return true;
}
