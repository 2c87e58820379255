import test from "ava";
import { performance } from "node:perf_hooks";
import { freePort, randomLoopback } from "../process/test-helpers.js";
import { httpServer } from "./test-helpers.js";
import { isHealthError } from "./errors.js";
import { waitHealthy, type WaitHealthyOptions } from "./wait.js";

const GATE = {
  check: { kind: "http", path: "/health_check", expectStatus: 200 },
  intervalMs: 20,
  timeoutMs: 500,
  healthyThreshold: 3,
  deadlineMs: 5000,
} satisfies Partial<WaitHealthyOptions>;

test("resolves after `healthyThreshold` consecutive passes, counting every check", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, (n) => (n < 2 ? 503 : 200));
  const result = await waitHealthy({ ...GATE, address, port: seen.port });
  t.is(result.checks, 5);
  t.is(seen.headers.length, 5);
});

test("a failure in between resets the count of consecutive passes", async (t) => {
  const address = randomLoopback();
  const answers = [200, 200, 503, 200, 200, 200];
  const seen = await httpServer(t, address, (n) => answers[n] ?? 500);
  const result = await waitHealthy({ ...GATE, address, port: seen.port });
  t.is(result.checks, 6);
});

test("the deadline rejects with ERR_HEALTH_DEADLINE carrying the last failure", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, () => 503);
  const started = performance.now();
  const error = await t.throwsAsync(waitHealthy({ ...GATE, address, port: seen.port, deadlineMs: 300 }));
  const took = performance.now() - started;
  t.true(isHealthError(error, "ERR_HEALTH_DEADLINE"));
  if (!isHealthError(error)) return;
  t.is(error.lastReason, `GET http://${address}:${seen.port}/health_check answered 503, expected 200`);
  t.true(error.message.startsWith(`${address}:${seen.port} did not pass 3 consecutive health checks within 300ms`), error.message);
  t.true(error.message.endsWith(`last failure: ${error.lastReason}`), error.message);
  t.true(error.checks >= 5, `${error.checks} checks`);
  t.true(took >= 295 && took < 1500, `took ${took}ms`);
});

test("a dead process fails the gate at once with ERR_PROCESS_EXITED_EARLY, not at the deadline", async (t) => {
  const address = randomLoopback();
  const port = await freePort(address);
  let checksAllowed = 2;
  const started = performance.now();
  const error = await t.throwsAsync(
    waitHealthy({ ...GATE, address, port, deadlineMs: 30_000, isAlive: () => checksAllowed-- > 0 }),
  );
  t.true(isHealthError(error, "ERR_PROCESS_EXITED_EARLY"));
  if (!isHealthError(error)) return;
  // isAlive is asked before and after each check: true, true, then false after the first check.
  t.is(error.checks, 1);
  t.is(error.lastReason, `GET http://${address}:${port}/health_check: connect ECONNREFUSED ${address}:${port}`);
  t.true(performance.now() - started < 1000);
});

test("a pass from a dead process does not count: someone else answers on its port", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, () => 200);
  const error = await t.throwsAsync(waitHealthy({ ...GATE, address, port: seen.port, healthyThreshold: 1, isAlive: () => seen.headers.length === 0 }));
  t.true(isHealthError(error, "ERR_PROCESS_EXITED_EARLY"));
});

test("an abort rejects with ERR_HEALTH_ABORTED during the wait between checks", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, () => 503);
  const controller = new AbortController();
  const gate = waitHealthy({ ...GATE, address, port: seen.port, intervalMs: 10_000, signal: controller.signal });
  while (seen.headers.length === 0) await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  const error = await t.throwsAsync(gate);
  t.true(isHealthError(error, "ERR_HEALTH_ABORTED"));
});
