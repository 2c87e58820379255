#!/usr/bin/env node
// Sample app for cutover: a fake geoip HTTP API (or a line-based TCP server with
// --tcp) with switches that make it misbehave on purpose, so deploys and health
// gates can be tested against every way a real release goes wrong.
// Plain ESM, no dependencies, no build step. See README.md.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { isIP } from "node:net";

const USAGE = `usage: node server.mjs [--port N] [--host ADDR] [--version V] [--tcp]
  [--fail-health] [--crash-at-start] [--never-listen] [--ignore-sigterm]
  [--slow-start MS] [--slow-response MS] [--hog-memory MB]
  [--error-rate PERCENT] [--fail-after MS] [--env-hash NAME[,NAME...]]`;

// Boolean switches and valued options, each with the env variable that also sets it.
const FLAGS = {
  "fail-health": "FAIL_HEALTH",
  "crash-at-start": "CRASH_AT_START",
  "never-listen": "NEVER_LISTEN",
  "ignore-sigterm": "IGNORE_SIGTERM",
  tcp: "TCP",
};
const VALUES = {
  port: "PORT",
  host: "HOST",
  version: "RELEASE",
  "slow-start": "SLOW_START_MS",
  "slow-response": "SLOW_RESPONSE_MS",
  "hog-memory": "HOG_MEMORY_MB",
  "error-rate": "ERROR_RATE_PERCENT",
  "fail-after": "FAIL_AFTER_MS",
  "env-hash": "ENV_HASH",
};

function parseArgs(argv, env) {
  const opts = {};
  for (const [name, key] of Object.entries(FLAGS)) opts[name] = isTrue(env[key]);
  for (const [name, key] of Object.entries(VALUES)) opts[name] = env[key];
  if (opts.version === undefined) opts.version = env.APP_VERSION;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, eq === -1 ? undefined : eq) : "";
    if (name in FLAGS) {
      opts[name] = true;
    } else if (name in VALUES) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      if (value === undefined) usage(`${arg} needs a value`);
      opts[name] = value;
    } else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  return {
    port: toInt("port", opts.port ?? "8080"),
    host: opts.host || "127.0.0.1",
    version: opts.version || "dev",
    color: env.COLOR || "none",
    failHealth: opts["fail-health"],
    crashAtStart: opts["crash-at-start"],
    neverListen: opts["never-listen"],
    ignoreSigterm: opts["ignore-sigterm"],
    tcp: opts.tcp,
    slowStartMs: toInt("slow-start", opts["slow-start"] ?? "0"),
    slowResponseMs: toInt("slow-response", opts["slow-response"] ?? "0"),
    hogMemoryMb: toInt("hog-memory", opts["hog-memory"] ?? "0"),
    errorRatePercent: toInt("error-rate", opts["error-rate"] ?? "0"),
    failAfterMs: toInt("fail-after", opts["fail-after"] ?? "0"),
    envHash: (opts["env-hash"] ?? "").split(",").filter(Boolean),
  };
}

function isTrue(value) {
  return value !== undefined && value !== "" && value !== "0" && value !== "false";
}

function toInt(name, value) {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) usage(`--${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

function usage(message) {
  console.error(`server.mjs: ${message}\n${USAGE}`);
  process.exit(2);
}

// A deterministic fake lookup: the same IP always maps to the same country.
const COUNTRIES = ["KR", "US", "JP", "DE", "FR", "BR", "IN", "GB", "CA", "AU"];
function lookupCountry(ip) {
  let hash = 0;
  for (const ch of ip) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return COUNTRIES[hash % COUNTRIES.length];
}

const opts = parseArgs(process.argv.slice(2), process.env);
const tag = `app ${opts.version} ${opts.color} pid=${process.pid}`;
const log = (line) => process.stdout.write(`${new Date().toISOString()} ${tag} ${line}\n`);

if (opts.crashAtStart) {
  console.error(`${tag} crashing at start (--crash-at-start)`);
  process.exit(1);
}

// Keep a reference so the pages stay allocated; fill them so they are resident.
const hog = [];
if (opts.hogMemoryMb > 0) {
  for (let i = 0; i < opts.hogMemoryMb; i++) hog.push(Buffer.alloc(1024 * 1024, 1));
  log(`holding ${opts.hogMemoryMb} MiB (--hog-memory)`);
}

const TCP_CLOSE_GRACE_MS = 2000;
let stopping = false;
const server = opts.tcp ? tcpServer() : httpServer();

function httpServer() {
  return createServer((req, res) => {
    const started = performance.now();
    res.setHeader("X-App-Version", opts.version);
    res.setHeader("X-App-Color", opts.color);
    if (stopping) res.setHeader("Connection", "close");
    res.on("finish", () => {
      log(`${req.method} ${req.url} ${res.statusCode} ${(performance.now() - started).toFixed(1)}ms`);
    });
    const url = req.url ?? "/";
    if (req.method === "GET" && url === "/health_check") {
      if (opts.failHealth) return send(res, 503, { status: "failing", reason: "--fail-health" });
      return send(res, 200, { status: "ok", version: opts.version, color: opts.color });
    }
    if (req.method === "GET" && url === "/metrics") return sendMetrics(res);
    // The sha256 of each variable --env-hash names (null when unset): proves what the app got, never shows it.
    if (req.method === "GET" && url === "/env-sha256") {
      const hashes = Object.fromEntries(opts.envHash.map((name) => [name, process.env[name] === undefined ? null : createHash("sha256").update(process.env[name]).digest("hex")]));
      return send(res, 200, hashes);
    }
    const match = /^\/api\/v1\/geoip\/([^/?]+)$/.exec(url);
    if (req.method === "GET" && match) {
      res.on("finish", () => countApi(res.statusCode));
      const ip = decodeURIComponent(match[1]);
      if (!isIP(ip)) return send(res, 400, { error: `not an IP address: ${ip}` });
      const failure = injectedFailure();
      if (failure) return send(res, 500, { error: failure });
      const body = { ip, country: lookupCountry(ip), version: opts.version, color: opts.color, pid: process.pid };
      if (opts.slowResponseMs > 0) {
        // Tells tests the request is in the app (in flight) before they stop it.
        log(`${req.method} ${url} delayed ${opts.slowResponseMs}ms (--slow-response)`);
        setTimeout(() => send(res, 200, body), opts.slowResponseMs);
        return;
      }
      return send(res, 200, body);
    }
    send(res, 404, { error: "not found" });
  });
}

// API answers by status code, for GET /metrics (Prometheus text format).
const apiAnswers = new Map();
let apiRequests = 0;
let injectedErrors = 0;
let listeningSince = 0;

function countApi(status) {
  apiAnswers.set(status, (apiAnswers.get(status) ?? 0) + 1);
}

/** Why this API request fails on purpose: --error-rate (exactly that share, spread evenly) or --fail-after. */
function injectedFailure() {
  apiRequests++;
  if (opts.failAfterMs > 0 && performance.now() - listeningSince >= opts.failAfterMs) return `failing since ${opts.failAfterMs} ms after listening (--fail-after)`;
  if (opts.errorRatePercent > 0 && Math.floor((apiRequests * opts.errorRatePercent) / 100) > injectedErrors) {
    injectedErrors++;
    return `injected error (--error-rate ${opts.errorRatePercent})`;
  }
  return undefined;
}

function sendMetrics(res) {
  const labels = (code) => `version="${opts.version}",color="${opts.color}",code="${code}"`;
  const lines = ["# HELP geoip_requests_total API requests answered, by release, color and status code.", "# TYPE geoip_requests_total counter"];
  for (const [code, count] of [...apiAnswers].sort((a, b) => a[0] - b[0])) lines.push(`geoip_requests_total{${labels(code)}} ${count}`);
  res.writeHead(200, { "Content-Type": "text/plain; version=0.0.4" });
  res.end(`${lines.join("\n")}\n`);
}

function send(res, status, body) {
  // Decided at send time too: a slow response that started before SIGTERM must
  // still tell the client not to reuse the connection.
  if (stopping) res.setHeader("Connection", "close");
  const payload = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(payload) });
  res.end(payload);
}

function tcpServer() {
  const sockets = new Set();
  const srv = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.setEncoding("utf8");
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk;
      let nl;
      while ((nl = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, nl).replace(/\r$/, "");
        buffered = buffered.slice(nl + 1);
        log(`tcp ${line === "VERSION" ? "VERSION" : "echo"}`);
        socket.write(line === "VERSION" ? `VERSION ${opts.version} ${opts.color}\n` : `${line}\n`);
        if (stopping) {
          socket.end();
          socket.setTimeout(TCP_CLOSE_GRACE_MS, () => socket.destroy());
        }
      }
    });
  });
  // A line protocol has no "idle between requests" marker we can see, so on
  // stop every open connection is ended after its current line is answered.
  srv.closeIdleConnections = () => {
    for (const socket of sockets) {
      if (socket.readableLength > 0) continue;
      socket.end();
      // A peer that never closes its side must not hold the stop forever.
      socket.setTimeout(TCP_CLOSE_GRACE_MS, () => socket.destroy());
    }
  };
  return srv;
}

function listen() {
  if (opts.neverListen) {
    log("alive but never listening (--never-listen)");
    setInterval(() => {}, 1 << 30);
    return;
  }
  server.on("error", (err) => {
    console.error(`${tag} cannot listen on ${opts.host}:${opts.port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    listeningSince = performance.now();
    log(`listening on ${opts.host}:${opts.port} (${opts.tcp ? "tcp" : "http"})`);
  });
}

function stop(signal) {
  if (opts.ignoreSigterm && signal === "SIGTERM") {
    log("ignoring SIGTERM (--ignore-sigterm)");
    return;
  }
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping, finishing in-flight requests`);
  if (!server.listening) {
    // --never-listen or still in --slow-start: nothing to finish.
    log("stopped");
    process.exit(0);
  }
  server.close(() => {
    log("stopped");
    process.exit(0);
  });
  server.closeIdleConnections();
}

process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

log(`starting (${opts.tcp ? "tcp" : "http"} on ${opts.host}:${opts.port})`);
if (opts.slowStartMs > 0) {
  log(`waiting ${opts.slowStartMs}ms before listening (--slow-start)`);
  setTimeout(listen, opts.slowStartMs);
} else {
  listen();
}
