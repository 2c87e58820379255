// The nginx change runner with a fake nginx and a fake dict: each route's states, and the
// one rollback path putting back what each step changed. Real files in a temp dir.
import test, { type ExecutionContext } from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { TEST_PROBE_TOKEN } from "./test-probe-token.js";
import { join } from "node:path";
import { type FileChange, type Plan, runChange } from "./change.js";
import { NginxError } from "./errors.js";
import type { Candidates, Handover, NginxRunner } from "./runner.js";
import { candidatePath, pendingPath } from "./site-files.js";

const HANDOVER: Handover = { masterPid: 1, oldWorkers: [] };

/** Records every call, in order; `fail` names the call that throws. */
function fakeNginx(t: ExecutionContext, fail?: "test" | "reload" | "confirm" | "set") {
  const dir = mkdtempSync(join(tmpdir(), "cutover-change-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const calls: string[] = [];
  const dict: { value: string | null } = { value: "old" };
  const runner: NginxRunner = {
    probeToken: TEST_PROBE_TOKEN,
    kind: "managed",
    controlSocket: join(dir, "control.sock"),
    sitePath: (app) => join(dir, `${app}.conf`),
    liveSupportFiles: () => [],
    detectCapabilities: () => ({ lua: true, stream: false }),
    async test(candidates?: Candidates) {
      calls.push(`test ${[...(candidates?.keys() ?? [])].length}`);
      return fail === "test" ? { ok: false, output: "nginx: [emerg] no" } : { ok: true, output: "" };
    },
    async reload() {
      calls.push(`reload ${readFileSync(join(dir, "demo.conf"), "utf8")}`);
      if (fail === "reload" && calls.filter((call) => call.startsWith("reload")).length === 1) throw new NginxError("ERR_NGINX_RELOAD_FAILED", "reload refused");
      return HANDOVER;
    },
    async retired() {
      calls.push("retired");
    },
    isRunning: () => true,
  };
  const path = runner.sitePath("demo", "http");
  writeFileSync(path, "old");
  const change = (content: string): FileChange => ({ path, next: content, previous: "old" });
  const setDict = async (value: string) => {
    calls.push(`set ${value}`);
    if (fail === "set") throw new NginxError("ERR_NGINX_CONTROL_FAILED", "no socket");
    const before = dict.value;
    dict.value = value;
    return async () => {
      calls.push(`unset ${before}`);
      dict.value = before;
    };
  };
  const plan = (overrides: Partial<Plan>): Plan => ({
    app: "demo",
    route: "reload",
    files: [change("new")],
    live: null,
    setAfterReload: null,
    async confirm() {
      calls.push(`confirm ${dict.value}`);
      if (fail === "confirm") throw new NginxError("ERR_NGINX_CONFIRM_TIMEOUT", "no answer");
    },
    testFailed: (output) => new NginxError("ERR_NGINX_TEST_FAILED", "rejected", { output }),
    ...overrides,
  });
  const run = (overrides: Partial<Plan>) => {
    const seen: string[] = [];
    const outcome = runChange(runner, KIND, "demo", () => plan(overrides), { onTransition: ({ from, to }) => seen.push(`${from}>${to}`) });
    return { outcome, seen };
  };
  /** A live set: the dict write, and whether it proved itself (a probed PUT) or needs the confirming step. */
  const liveSet = async (value: string, confirmed = false) => ({ undo: await setDict(value), confirmed });
  return { runner, path, calls, dict, change, setDict, liveSet, run };
}

const KIND = {
  what: "switch",
  setStep: "setting-port" as const,
  asError: (error: unknown) => (error instanceof NginxError ? error : new NginxError("ERR_NGINX_IO_FAILED", String(error))),
};

test("reload route: test, activate, reload, retire, set the dict, confirm", async (t) => {
  const n = fakeNginx(t);
  const { outcome, seen } = n.run({ setAfterReload: () => n.setDict("new") });
  t.like(await outcome, { reloaded: true });
  t.deepEqual(seen, ["planned>testing", "testing>activating", "activating>reloading", "reloading>retiring", "retiring>setting-port", "setting-port>confirming", "confirming>done"]);
  t.deepEqual(n.calls, ["test 1", "reload new", "retired", "set new", "confirm new"]);
  t.false(existsSync(candidatePath(n.path)));
});

test("nginx -t says no: failed from testing, candidate discarded, nothing live touched", async (t) => {
  const n = fakeNginx(t, "test");
  const { outcome, seen } = n.run({});
  const error = await t.throwsAsync(outcome, { instanceOf: NginxError, code: "ERR_NGINX_TEST_FAILED" });
  t.is(error.output, "nginx: [emerg] no");
  t.false(error.rolledBack);
  t.deepEqual(seen, ["planned>testing", "testing>failed"]);
  t.is(readFileSync(n.path, "utf8"), "old");
  t.false(existsSync(candidatePath(n.path)));
});

test("a failed confirmation after a reload puts the dict, then the file back, and reloads the old file", async (t) => {
  const n = fakeNginx(t, "confirm");
  const { outcome, seen } = n.run({ setAfterReload: () => n.setDict("new") });
  const error = await t.throwsAsync(outcome, { instanceOf: NginxError, code: "ERR_NGINX_CONFIRM_TIMEOUT" });
  t.true(error.rolledBack);
  t.deepEqual(seen.slice(-2), ["confirming>rolling-back", "rolling-back>failed"]);
  t.deepEqual(n.calls, ["test 1", "reload new", "retired", "set new", "confirm new", "unset old", "reload old", "retired"]);
  t.is(n.dict.value, "old");
});

test("a refused reload restores the file and reloads it without failing fast", async (t) => {
  const n = fakeNginx(t, "reload");
  const error = await t.throwsAsync(n.run({}).outcome, { instanceOf: NginxError, code: "ERR_NGINX_RELOAD_FAILED" });
  t.true(error.rolledBack);
  t.deepEqual(n.calls, ["test 1", "reload new", "reload old", "retired"]);
  t.is(readFileSync(n.path, "utf8"), "old");
});

test("a plan that throws fails the change from planned with the kind's error", async (t) => {
  const n = fakeNginx(t);
  const seen: string[] = [];
  const outcome = runChange(n.runner, KIND, "demo", () => {
    throw new Error("bad site");
  }, { onTransition: ({ from, to }) => seen.push(`${from}>${to}`) });
  await t.throwsAsync(outcome, { instanceOf: NginxError, code: "ERR_NGINX_IO_FAILED" });
  t.deepEqual(seen, ["planned>failed"]);
});

test("live route, after-done: resolves once set and confirmed; the file follows, and the next change waits for it", async (t) => {
  const n = fakeNginx(t);
  const fallback = n.change("new");
  const { outcome, seen } = n.run({ route: "live", live: { set: () => n.liveSet("new"), fallback, persist: "after-done" } });
  const done = await outcome;
  t.deepEqual(seen, ["planned>setting-port", "setting-port>confirming", "confirming>done"]);
  t.like(done, { reloaded: false, handoverMs: 0 });
  t.deepEqual(n.calls, ["set new", "confirm new"]);
  const next = n.run({ route: "verify", files: [] }).outcome;
  t.is(await done.persisted, null);
  t.is(readFileSync(n.path, "utf8"), "new");
  t.false(existsSync(pendingPath(n.path)));
  await next;
});

test("live route, after-done: a set that proved itself is done without a confirming step; the file follows", async (t) => {
  const n = fakeNginx(t);
  const { outcome, seen } = n.run({ route: "live", live: { set: () => n.liveSet("new", true), fallback: n.change("new"), persist: "after-done" } });
  const done = await outcome;
  t.deepEqual(seen, ["planned>setting-port", "setting-port>done"]);
  t.deepEqual(n.calls, ["set new"]);
  t.is(await done.persisted, null);
  t.is(readFileSync(n.path, "utf8"), "new");
});

test("live route, with-confirm: a set that proved itself still writes its file before done", async (t) => {
  const n = fakeNginx(t);
  const { outcome, seen } = n.run({ route: "live", live: { set: () => n.liveSet("new", true), fallback: n.change("new"), persist: "with-confirm" } });
  await outcome;
  t.deepEqual(seen, ["planned>setting-port", "setting-port>persisting", "persisting>done"]);
  t.deepEqual(n.calls, ["set new"]);
  t.is(readFileSync(n.path, "utf8"), "new");
});

test("live route, after-done: a failed confirmation puts the dict back; neither the file nor a pending copy changed", async (t) => {
  const n = fakeNginx(t, "confirm");
  const { outcome } = n.run({ route: "live", live: { set: () => n.liveSet("new"), fallback: n.change("new"), persist: "after-done" } });
  const error = await t.throwsAsync(outcome, { instanceOf: NginxError, code: "ERR_NGINX_CONFIRM_TIMEOUT" });
  t.true(error.rolledBack);
  t.deepEqual(n.calls, ["set new", "confirm new", "unset old"]);
  t.is(readFileSync(n.path, "utf8"), "old");
  t.false(existsSync(pendingPath(n.path)));
});

test("live route, with-confirm: the file is written in persisting and put back with the dict on failure", async (t) => {
  const n = fakeNginx(t, "confirm");
  const { outcome, seen } = n.run({ route: "live", live: { set: () => n.liveSet("new"), fallback: n.change("new"), persist: "with-confirm" } });
  await t.throwsAsync(outcome, { instanceOf: NginxError, code: "ERR_NGINX_CONFIRM_TIMEOUT" });
  t.deepEqual(seen, ["planned>setting-port", "setting-port>persisting", "persisting>confirming", "confirming>rolling-back", "rolling-back>failed"]);
  t.is(readFileSync(n.path, "utf8"), "old");
  t.is(n.dict.value, "old");
});

test("live route with no control endpoint (set resolves null): reloads instead, testing what changes", async (t) => {
  const n = fakeNginx(t);
  const { outcome, seen } = n.run({ route: "live", live: { set: async () => null, fallback: n.change("new"), persist: "with-confirm" } });
  t.like(await outcome, { reloaded: true });
  t.deepEqual(seen.slice(0, 3), ["planned>setting-port", "setting-port>testing", "testing>activating"]);
});

test("a failed dict write rolls back with nothing to undo", async (t) => {
  const n = fakeNginx(t, "set");
  const error = await t.throwsAsync(n.run({ route: "live", live: { set: () => n.liveSet("new"), fallback: null, persist: "after-done" } }).outcome, {
    instanceOf: NginxError,
    code: "ERR_NGINX_CONTROL_FAILED",
  });
  t.true(error.rolledBack);
  t.is(readFileSync(n.path, "utf8"), "old");
});

test("verify route: the probe answers, done without a reload; it does not, reload without testing", async (t) => {
  const n = fakeNginx(t);
  const ok = n.run({ route: "verify", files: [] });
  t.like(await ok.outcome, { reloaded: false });
  t.deepEqual(ok.seen, ["planned>verifying", "verifying>done"]);
  const failing = fakeNginx(t, "confirm");
  const again = failing.run({ route: "verify", files: [] });
  await t.throwsAsync(again.outcome, { code: "ERR_NGINX_CONFIRM_TIMEOUT" });
  t.deepEqual(again.seen.slice(0, 3), ["planned>verifying", "verifying>reloading", "reloading>retiring"]);
});
