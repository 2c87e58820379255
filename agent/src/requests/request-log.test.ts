import test from "ava";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RequestLogs } from "./request-log.js";

test("a request log is counted as it grows, from where it was when the agent started; a half-written last line waits for the next read", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-requests-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "lb.geoip.log");
  writeFileSync(path, "200 0.001 0.001 127.0.0.11:8080\n"); // before this agent: not counted again
  const logs = new RequestLogs(dir);
  t.deepEqual(await logs.read(), []);
  appendFileSync(path, "200 0.004 0.003 127.0.0.11:8080\n502 0.010 - 127.0.0.12:8080\n500 0.3");
  const first = await logs.read();
  t.like(first.find((c) => c.upstream === "127.0.0.11:8080"), { site: "lb", app: "geoip", requests: 1, byClass: { "2xx": 1 } });
  t.like(first.find((c) => c.upstream === "127.0.0.12:8080"), { requests: 1, upstreamErrors: 1, byClass: { "5xx": 1 } });
  appendFileSync(path, "00 0.300 0.290 127.0.0.13:8080, 127.0.0.11:8080\n");
  const second = await logs.read();
  t.like(second.find((c) => c.upstream === "127.0.0.11:8080"), { requests: 2, byClass: { "2xx": 1, "5xx": 1 } }, "the retried request counts for the upstream that answered");
  t.is(second.find((c) => c.upstream === "127.0.0.11:8080")?.upstreamErrors, 0, "a 500 from the app is not an upstream error");
});

test("a log that appears after the agent started (a site loaded later) is counted from its first line", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-requests-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logs = new RequestLogs(dir);
  t.deepEqual(await logs.read(), []);
  writeFileSync(join(dir, "app.geoip.log"), "200 0.001 0.001 127.0.0.11:7001\n200 0.001 0.001 127.0.0.11:7001\n");
  t.like((await logs.read()).find((c) => c.upstream === "127.0.0.11:7001"), { site: "app", app: "geoip", requests: 2 });
});
