import test from "ava";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type AuditRow } from "./harness/fleet.js";
import { jsonError } from "./harness/cli-error.js";
import { CUTOVER_BIN, spawnWatched } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };

interface LockJson {
  app: string;
  holder: string;
  reason: string;
  acquiredAt: string;
}

test.serial("a locked app refuses deploys and rollbacks naming who and why; --lock-wait deploys once the lock is released", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const { coordinator } = fleet;
  const spec = writeExampleSpec(fleet.dir, PORTS);
  const v1 = await coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  const ops = await coordinator.apiToken("deploy", "ops");

  const taken = await coordinator.cli(["lock", "acquire", "geoip", "-m", "db migration running", "--json"], ops);
  t.is(taken.exitCode, 0, taken.stderr);
  t.like(JSON.parse(taken.stdout) as LockJson, { app: "geoip", holder: "ops", reason: "db migration running" });
  const again = await coordinator.cli(["lock", "acquire", "geoip", "-m", "mine"]);
  t.is(again.exitCode, 75, "try later: the app is locked");
  t.regex(again.stderr, /geoip is locked by ops since \S+: "db migration running".*ERR_APP_LOCKED/);

  for (const refused of [await coordinator.cli(["deploy", spec, "--release", "v2"]), await coordinator.cli(["rollback", "geoip"])]) {
    t.is(refused.exitCode, 75, "try later: the app is locked");
    t.regex(refused.stderr, /geoip is locked by ops since \S+: "db migration running"; nothing was deployed.*\(ERR_APP_LOCKED\)/);
  }
  // A script reads why from stderr: one JSON object with the coordinator's code.
  const scripted = await coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(scripted.exitCode, 75, "try later: the app is locked");
  const why = jsonError(scripted);
  t.is(why.code, "ERR_APP_LOCKED");
  t.regex(why.message, /^geoip is locked by ops since \S+: "db migration running"; nothing was deployed/);
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v1", "nothing reached the host");
  const history = await coordinator.cliJson<unknown[]>(["history", "geoip"]);
  t.is(history.json.length, 1, "the refused deploys and rollback left no deployment behind");

  const status = await coordinator.cliJson<LockJson>(["lock", "status", "geoip"]);
  t.like(status.json, { holder: "ops", reason: "db migration running" });
  const table = await coordinator.cli(["lock", "status"]);
  t.regex(table.stdout, /^APP\s+HOLDER\s+SINCE\s+REASON$/m);
  t.regex(table.stdout, /^geoip\s+ops\s+\S+\s+db migration running$/m);

  // CI's deploy waits for the lock instead of failing; it says so, then goes on once released.
  const waiting = spawnWatched("deploy --lock-wait", CUTOVER_BIN, ["deploy", spec, "--release", "v2", "--lock-wait", "2m", "--json"], {
    CUTOVER_URL: coordinator.url,
    CUTOVER_TOKEN: coordinator.adminToken,
    CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml",
  });
  t.teardown(() => waiting.kill("SIGKILL"));
  await waiting.waitForLine(/waiting up to 1[12]\ds for geoip's lock to be released/);
  const released = await coordinator.cli(["lock", "release", "geoip"]);
  t.is(released.exitCode, 0, released.stderr);
  t.regex(released.stdout, /geoip unlocked \(it was held by ops: db migration running\)/);
  const { code } = await waiting.exited;
  t.is(code, 0, waiting.lines.join("\n"));
  const result = JSON.parse(waiting.lines.find((l) => l.startsWith("{"))!) as { status: string; release: string };
  t.like(result, { status: "succeeded", release: "v2" });
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v2");

  const audit = (await coordinator.cliJson<AuditRow[]>(["audit", "--limit", "500"])).json;
  t.like(audit.find((r) => r.action === "POST /v1/apps/geoip/lock" && r.outcome === "201"), { actor: "ops", target: "geoip" });
  t.regex(audit.find((r) => r.action === "POST /v1/apps/geoip/lock" && r.outcome === "201")!.detail, /reason=db migration running/);
  t.regex(audit.find((r) => r.action === "DELETE /v1/apps/geoip/lock")!.detail, /released=.*"holder":"ops".*"reason":"db migration running"/);
});

test.serial("a lock needs a deploy token and a one-line reason; --lock-wait gives up naming the lock; releasing a free app says so", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const { coordinator } = fleet;
  const reader = await coordinator.apiToken("read", "dashboard");
  const refused = await coordinator.cli(["lock", "acquire", "geoip", "-m", "why"], reader);
  t.is(refused.exitCode, 77, "denied: a read token cannot lock");
  t.regex(refused.stderr, /this needs a token with role "deploy"; yours \("dashboard"\) has "read" \(ERR_FORBIDDEN\)/);
  for (const reason of ["   ", "two\nlines", "x".repeat(501)]) {
    const bad = await fetch(`${coordinator.url}/v1/apps/geoip/lock`, {
      method: "POST",
      headers: { authorization: `Bearer ${coordinator.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ reason }),
    });
    t.is(bad.status, 400, JSON.stringify(reason));
  }
  const free = await coordinator.cli(["lock", "release", "geoip"]);
  t.is(free.exitCode, 65, "refused: there is no lock to release (ERR_NOT_LOCKED)");
  t.regex(free.stderr, /geoip is not locked \(ERR_NOT_LOCKED\)/);
  t.is((await coordinator.cliJson<unknown>(["lock", "status", "geoip"])).json, null);

  t.is((await coordinator.cli(["lock", "acquire", "geoip", "-m", "freeze"])).exitCode, 0);
  const spec = writeExampleSpec(fleet.dir, PORTS);
  const gaveUp = await coordinator.cli(["deploy", spec, "--release", "v1", "--lock-wait", "1500ms"]);
  t.is(gaveUp.exitCode, 75, "try later: --lock-wait gave up, the app is still locked");
  t.regex(gaveUp.stderr, /gave up waiting for the lock: geoip is locked by \S+ since \S+: freeze; nothing was deployed/);
  const badWait = await coordinator.cli(["deploy", spec, "--release", "v1", "--lock-wait", "soon"]);
  t.is(badWait.exitCode, 64);
  t.regex(badWait.stderr, /--lock-wait: invalid duration "soon"/);
});
