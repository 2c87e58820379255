// The example app (examples/app/server.mjs) is what the deploy tests run; these
// tests hold it to the behaviour they rely on.
import test from "ava";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { waitHealthy } from "../health/index.js";
import { readRssBytes } from "./proc.js";
import { startProcess } from "./start.js";
import { stopProcess } from "./stop.js";
import { appFixture, FAST_GATE, get, logShows } from "./test-helpers.js";

const GRACEFUL = { signal: "SIGTERM", timeoutMs: 5000 } as const;

async function started(t: import("ava").ExecutionContext, flags: string[], check = FAST_GATE.check) {
  const f = await appFixture(t, flags, "green", "v9");
  const proc = await startProcess(f.spec, f.identity, f);
  await waitHealthy({ ...f.identity, ...FAST_GATE, check, isAlive: () => proc.isAlive() });
  return { f, proc, ...f.identity };
}

test("an in-flight request finishes during a graceful stop, told to close its connection", async (t) => {
  const { proc, address, port } = await started(t, ["--slow-response", "400"]);
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const answer = new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
    request({ host: address, port, path: "/api/v1/geoip/8.8.8.8", agent }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body }));
    })
      .on("error", reject)
      .end();
  });
  await logShows(proc.record.logPath, /GET \/api\/v1\/geoip\/8\.8\.8\.8 delayed 400ms/);
  const stop = stopProcess(proc, GRACEFUL);
  const { status, connection, body } = await answer;
  t.is(status, 200);
  t.is(connection, "close");
  t.like(JSON.parse(body), { ip: "8.8.8.8", version: "v9", color: "green" });
  t.like(await stop, { exitCode: 0, timedOut: false });
});

test("idle keep-alive connections are closed at once on stop: the app exits without waiting for them", async (t) => {
  const { proc, address, port } = await started(t, []);
  const agent = new Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const socketClosed = new Promise<void>((resolve, reject) => {
    request({ host: address, port, path: "/health_check", agent }, (res) => {
      res.resume();
      res.socket.once("close", () => resolve());
    })
      .on("error", reject)
      .end();
  });
  await logShows(proc.record.logPath, /GET \/health_check 200.*\n.*GET \/health_check 200.*\n.*GET \/health_check 200/);
  const result = await stopProcess(proc, GRACEFUL);
  await socketClosed;
  t.like(result, { exitCode: 0, timedOut: false });
  t.true(result.durationMs < 2000, `took ${result.durationMs}ms (keep-alive timeout is 5s)`);
});

test("--tcp answers VERSION with version and color, and echoes other lines", async (t) => {
  const { proc, address, port } = await started(t, ["--tcp"], { kind: "tcp" } as never);
  const socket = connect({ host: address, port });
  t.teardown(() => socket.destroy());
  socket.setEncoding("utf8");
  let received = "";
  socket.on("data", (chunk: string) => (received += chunk));
  socket.write("VERSION\nhello there\n");
  while (received.split("\n").length < 3) await once(socket, "data");
  t.is(received, "VERSION v9 green\nhello there\n");
  t.like(await stopProcess(proc, GRACEFUL), { exitCode: 0 });
});

test("404 for unknown paths, 400 for a bad IP, both with the version headers", async (t) => {
  const { proc, address, port } = await started(t, []);
  const missing = await get(address, port, "/nope");
  t.is(missing.status, 404);
  t.is(missing.headers["x-app-version"], "v9");
  const bad = await get(address, port, "/api/v1/geoip/not-an-ip");
  t.is(bad.status, 400);
  t.is(bad.headers["x-app-color"], "green");
  await stopProcess(proc, GRACEFUL);
});

// Peak resident memory (VmHWM), not the current one: this machine's kernel reclaims cold
// pages proactively (DAMON), so VmRSS of an idle hog can drop below what it touched.
test("--hog-memory touches that much memory", async (t) => {
  const { proc } = await started(t, ["--hog-memory", "64"]);
  const peak = Number(/^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  t.true(peak > 64 * 1024 * 1024, `peak rss ${peak}, rss now ${readRssBytes(proc.pid)}`);
  await stopProcess(proc, GRACEFUL);
});
