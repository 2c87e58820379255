import test from "ava";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { freePort, randomLoopback } from "../process/test-helpers.js";
import { checkOnce } from "./check.js";
import { httpServer } from "./test-helpers.js";

const HTTP_CHECK = { kind: "http", path: "/health_check", expectStatus: 200 } as const;

test("http: the expected status passes, on a fresh connection each time, asking the app to close it", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, () => 200);
  for (let i = 0; i < 3; i++) {
    const result = await checkOnce({ address, port: seen.port }, HTTP_CHECK, 1000);
    t.like(result, { ok: true, status: 200 });
  }
  t.is(seen.connections, 3);
  t.is(seen.headers[0]?.connection, "close");
  t.is(seen.headers[0]?.["user-agent"], "cutover-agent health-check");
});

test("http: another status fails with the status and the expectation in the reason", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, () => 503);
  const result = await checkOnce({ address, port: seen.port }, HTTP_CHECK, 1000);
  t.deepEqual({ ...result, durationMs: 0 }, {
    ok: false,
    status: 503,
    durationMs: 0,
    reason: `GET http://${address}:${seen.port}/health_check answered 503, expected 200`,
  });
});

test("http: a refused connection fails with ECONNREFUSED in the reason", async (t) => {
  const address = randomLoopback();
  const port = await freePort(address);
  const result = await checkOnce({ address, port }, HTTP_CHECK, 1000);
  t.false(result.ok);
  t.is(!result.ok && result.reason, `GET http://${address}:${port}/health_check: connect ECONNREFUSED ${address}:${port}`);
});

test("http: an app that never answers fails after the timeout, not later", async (t) => {
  const address = randomLoopback();
  const seen = await httpServer(t, address, () => "hang");
  const result = await checkOnce({ address, port: seen.port }, HTTP_CHECK, 200);
  t.false(result.ok);
  t.is(!result.ok && result.reason, `GET http://${address}:${seen.port}/health_check: no answer within 200ms`);
  t.true(result.durationMs >= 195 && result.durationMs < 1000, `took ${result.durationMs}ms`);
});

test("tcp: a listening port passes, a closed one fails", async (t) => {
  const address = randomLoopback();
  const server = createTcpServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  t.like(await checkOnce({ address, port }, { kind: "tcp" }, 1000), { ok: true });

  const closed = await freePort(address);
  const failed = await checkOnce({ address, port: closed }, { kind: "tcp" }, 1000);
  t.is(!failed.ok && failed.reason, `TCP connect ${address}:${closed}: connect ECONNREFUSED ${address}:${closed}`);
});
