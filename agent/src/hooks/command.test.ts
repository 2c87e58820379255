// What the agent runs for a RunHook, and what it refuses: the command as data, compared exactly; spawns nothing but the handler's last tests.
import test from "ava";
import { createLogger } from "@cutover/log";
import { v1, type cutover } from "@cutover/protocol";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProcessError } from "../process/index.js";
import { hookCommand, hookRequestOf } from "./command.js";
import { HookError } from "./errors.js";
import { hookHandler, type HookHandlerOptions } from "./handler.js";
import type { runHook } from "./run.js";

const Status = v1.CommandResult.Status;
const NOBODY = { uid: 65534, gid: 65534, home: "/nonexistent" };
const CTX = { port: 7002, address: "10.0.0.5", color: "green" as const, release: "v2", releaseDir: "/var/lib/cutover/releases/geoip/v2" };
const RUN = { command: ["node", "server.js"], env: { NODE_ENV: "production", SELF: "http://${ADDRESS}:${PORT}" }, user: "geoip" };

test("pre_deploy: the argv with ${RELEASE} and ${ADDRESS}, the app's env as the app gets it but without a port or color, as run.user", (t) => {
  const request = hookRequestOf({ hook: "pre_deploy", command: ["node", "migrate.js", "--release=${RELEASE}", "$${KEEP}"], timeoutMs: 300_000 });
  t.deepEqual(hookCommand(request, RUN, CTX, { lookupUser: () => NOBODY, baseEnv: { PATH: "/usr/bin", SECRET_OF_AGENT: "x" } }), {
    file: "node",
    args: ["migrate.js", "--release=v2", "$${KEEP}"],
    env: { PATH: "/usr/bin", HOME: "/nonexistent", USER: "geoip", LOGNAME: "geoip", NODE_ENV: "production", SELF: "http://10.0.0.5:7002", HOST: "10.0.0.5", RELEASE: "v2", CUTOVER_HOOK: "pre_deploy" },
    cwd: CTX.releaseDir,
    uid: 65534,
    gid: 65534,
  });
});

test("post_switch: ${PORT} and ${COLOR} are the live color's; the app's secrets are in its environment", (t) => {
  const request = hookRequestOf({ hook: "post_switch", command: ["./smoke", "http://${ADDRESS}:${PORT}/health_check", "${COLOR}"], timeoutMs: 60_000 });
  const spec = hookCommand(request, { ...RUN, secretEnv: { DATABASE_URL: "postgres://u:p@db/geoip" } }, CTX, { lookupUser: () => NOBODY, baseEnv: {} });
  t.deepEqual(spec.args, ["http://10.0.0.5:7002/health_check", "green"]);
  t.like(spec.env, { PORT: "7002", COLOR: "green", DATABASE_URL: "postgres://u:p@db/geoip", CUTOVER_HOOK: "post_switch" });
});

test("a hook obeys the app's run-as rules: no run.user under a root agent is refused, as for the app", (t) => {
  const request = hookRequestOf({ hook: "pre_deploy", command: ["node", "migrate.js"], timeoutMs: 60_000 });
  const error = t.throws(() => hookCommand(request, { ...RUN, user: undefined }, CTX, { agentUid: 0, rootApps: "refuse" }));
  t.true(isProcessError(error, "ERR_ROOT_APP_REFUSED"), String(error));
  const root = t.throws(() => hookCommand(request, { ...RUN, user: "toor" }, CTX, { lookupUser: () => ({ uid: 0, gid: 0, home: "/root" }), rootApps: "refuse" }));
  t.true(isProcessError(root, "ERR_ROOT_APP_REFUSED"));
  t.notThrows(() => hookCommand(request, { ...RUN, user: undefined }, CTX, { agentUid: 0, rootApps: "allow" }));
});

test("${PORT} in a pre_deploy hook is refused on the agent too", (t) => {
  const request = hookRequestOf({ hook: "pre_deploy", command: ["node", "warm.js", "${PORT}"], timeoutMs: 60_000 });
  const error = t.throws(() => hookCommand(request, RUN, CTX, { lookupUser: () => NOBODY }));
  t.true(isProcessError(error, "ERR_UNKNOWN_VARIABLE"));
  t.is(error?.message, "hooks.pre_deploy.command[2] uses ${PORT}, which the agent does not provide; use one of ${RELEASE}, ${ADDRESS}");
});

const badRequest = test.macro({
  exec(t, wire: Parameters<typeof hookRequestOf>[0], message: string) {
    const error = t.throws(() => hookRequestOf(wire), { instanceOf: HookError });
    t.is(error.code, "ERR_INVALID_HOOK");
    t.is(error.message, message);
  },
  title: (title) => `refuses a RunHook with ${title}`,
});

test("an unknown hook", badRequest, { hook: "pre_start", command: ["x"], timeoutMs: 5_000 }, 'unknown hook "pre_start": this agent runs pre_deploy and post_switch');
test("no command", badRequest, { hook: "pre_deploy", command: [], timeoutMs: 5_000 }, "hooks.pre_deploy.command has 0 entries: give the program and its arguments, at most 256");
test("too many arguments", badRequest, { hook: "pre_deploy", command: Array(257).fill("x"), timeoutMs: 5_000 }, "hooks.pre_deploy.command has 257 entries: give the program and its arguments, at most 256");
test("an empty program", badRequest, { hook: "post_switch", command: ["", "x"], timeoutMs: 5_000 }, "hooks.post_switch.command[0] is refused by this host: a string without NUL characters, not empty");
test("a NUL in an argument", badRequest, { hook: "post_switch", command: ["x", "a\0b"], timeoutMs: 5_000 }, "hooks.post_switch.command[1] is refused by this host: a string without NUL characters");
test("no timeout", badRequest, { hook: "pre_deploy", command: ["x"] }, "hooks.pre_deploy.timeout of 0 ms is refused by this host: from 1000 to 3600000 ms");
test("a timeout over an hour", badRequest, { hook: "pre_deploy", command: ["x"], timeoutMs: 3_600_001 }, "hooks.pre_deploy.timeout of 3600001 ms is refused by this host: from 1000 to 3600000 ms");

// ---- the RunHook operation ----

const APP: cutover.v1.AppDefinition.$Properties = {
  name: "geoip",
  run: { command: ["node", "server.js"], env: { NODE_ENV: "test" }, user: "nobody", secretEnv: { DATABASE_URL: "DB" } },
  bluePort: 7001,
  greenPort: 7002,
  proxy: { listenPort: 8080 },
};

function handler(t: { teardown(fn: () => void): void }, live: { color: "blue" | "green"; release: string } | null, run?: typeof runHook) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-hook-release-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const events: cutover.v1.Event.$Properties[] = [];
  const fetched: string[] = [];
  const options: HookHandlerOptions = {
    address: "127.0.0.1",
    admission: { rootApps: "refuse", lookupUser: () => NOBODY },
    releases: {
      dirOf: async (_app, release) => {
        fetched.push(`${release.release}:${release.sha256 ?? "-"}`);
        return dir;
      },
    },
    live: () => live,
    emit: (event) => events.push(event),
    log: createLogger("test", { write: () => {} }),
    ...(run && { run }),
  };
  return { handle: hookHandler(options), events, fetched, dir };
}

const command = (runHook: cutover.v1.RunHook.$Properties): cutover.v1.Command => v1.Command.create({ commandId: "c-1", runHook });

test("RunHook pre_deploy: fetches the release, runs the hook as run.user in it, streams its output, answers OK with how it ended", async (t) => {
  let ran: Parameters<typeof runHook>[0] | undefined;
  const { handle, events, fetched, dir } = handler(t, { color: "blue", release: "v1" }, async (spec, options) => {
    ran = spec;
    options.onLine?.("applied 3 migrations");
    return { exitCode: 0, signal: null, timedOut: false, outputTail: "applied 3 migrations", durationMs: 42 };
  });
  const result = await handle(command({ app: APP, release: "v2", artifact: { sha256: "ab".repeat(32) }, hook: "pre_deploy", command: ["node", "migrate.js"], timeoutMs: 60_000, secrets: { DB: "postgres://u:p@db/geoip" } }));
  t.is(result.status, Status.OK);
  t.is(ran?.env.DATABASE_URL, "postgres://u:p@db/geoip", "the app's secret, from the command");
  t.deepEqual(result.hookRan, { exitCode: 0, signal: "", timedOut: false, outputTail: "applied 3 migrations", durationMs: 42, cwd: dir });
  t.deepEqual(fetched, [`v2:${"ab".repeat(32)}`]);
  t.like(ran, { file: "/usr/bin/nice", args: ["-n", "5", "node", "migrate.js"], cwd: dir, uid: 65534, gid: 65534 });
  t.deepEqual(events.map((e) => [e.commandId, e.kind, e.app]), [
    ["c-1", "hook", "geoip"],
    ["c-1", "hook.output", "geoip"],
    ["c-1", "hook", "geoip"],
  ]);
  t.is(events[1]!.message, "applied 3 migrations");
});

test("RunHook: a hook that exits non-zero is FAILED with ERR_HOOK_FAILED and its output tail", async (t) => {
  const { handle } = handler(t, null, async () => ({ exitCode: 2, signal: null, timedOut: false, outputTail: "no such table", durationMs: 7 }));
  const result = await handle(command({ app: APP, release: "v2", hook: "pre_deploy", command: ["node", "migrate.js"], timeoutMs: 60_000, secrets: { DB: "x" } }));
  t.is(result.status, Status.FAILED);
  t.is(result.errorCode, "ERR_HOOK_FAILED");
  t.is(result.message, "the pre_deploy hook exited with code 2 after 7 ms");
  t.is(result.hookRan?.outputTail, "no such table");
});

test("RunHook: a timed-out hook is ERR_HOOK_TIMEOUT, one that cannot start ERR_HOOK_SPAWN_FAILED", async (t) => {
  const timedOut = await handler(t, null, async () => ({ exitCode: null, signal: "SIGKILL", timedOut: true, outputTail: "", durationMs: 5000 })).handle(
    command({ app: APP, release: "v2", hook: "pre_deploy", command: ["x"], timeoutMs: 5_000, secrets: { DB: "x" } }),
  );
  t.is(timedOut.errorCode, "ERR_HOOK_TIMEOUT");
  t.is(timedOut.message, "the pre_deploy hook was still running after 5s: its process group was killed");
  t.is(timedOut.hookRan?.exitCode, -1);
  const spawn = await handler(t, null, async () => ({ exitCode: null, signal: null, timedOut: false, spawnError: "spawn x ENOENT", outputTail: "", durationMs: 1 })).handle(
    command({ app: APP, release: "v2", hook: "pre_deploy", command: ["x"], timeoutMs: 5_000, secrets: { DB: "x" } }),
  );
  t.is(spawn.errorCode, "ERR_HOOK_SPAWN_FAILED");
  t.is(spawn.message, "the pre_deploy hook could not start: spawn x ENOENT");
});

test("RunHook post_switch of a release that is not live here is REJECTED, nothing fetched or run", async (t) => {
  const { handle, fetched } = handler(t, { color: "blue", release: "v1" }, async () => t.fail("ran") as never);
  const result = await handle(command({ app: APP, release: "v2", hook: "post_switch", command: ["x"], timeoutMs: 5_000 }));
  t.is(result.status, Status.REJECTED);
  t.is(result.errorCode, "ERR_INVALID_HOOK");
  t.is(result.message, "post_switch hook of geoip v2: v1 is live on this host, so it did not run; nothing was run");
  t.deepEqual(fetched, []);
});

test("RunHook for an app that would run as root is REJECTED with ERR_ROOT_APP_REFUSED, as its Deploy would be", async (t) => {
  const { handle } = handler(t, null, async () => t.fail("ran") as never);
  const result = await handle(command({ app: { ...APP, run: { command: ["node"], user: "" } }, release: "v2", hook: "pre_deploy", command: ["x"], timeoutMs: 5_000 }));
  // The handler's admission has lookupUser only; the agent's uid decides: a non-root test runner is not root.
  if (process.geteuid?.() === 0) {
    t.is(result.status, Status.REJECTED);
    t.is(result.errorCode, "ERR_ROOT_APP_REFUSED");
  } else t.pass();
});

test("RunHook without a secret the app's environment references is REJECTED with ERR_SECRET_UNAVAILABLE, nothing run", async (t) => {
  const { handle } = handler(t, null, async () => t.fail("ran") as never);
  const result = await handle(command({ app: APP, release: "v2", hook: "pre_deploy", command: ["x"], timeoutMs: 5_000 }));
  t.is(result.status, Status.REJECTED);
  t.is(result.errorCode, "ERR_SECRET_UNAVAILABLE");
  t.false(result.message?.includes("postgres"));
});

test("RunHook with a release that is not a release name is REJECTED", async (t) => {
  const { handle } = handler(t, null);
  const result = await handle(command({ app: APP, release: "../etc", hook: "pre_deploy", command: ["x"], timeoutMs: 5_000 }));
  t.is(result.status, Status.REJECTED);
  t.is(result.errorCode, "ERR_INVALID_HOOK");
});

test("RunHook reads the app's run.env_file on this host, as an instance's start does", async (t) => {
  let ran: Parameters<typeof runHook>[0] | undefined;
  const { handle, dir } = handler(t, null, async (spec) => {
    ran = spec;
    return { exitCode: 0, signal: null, timedOut: false, outputTail: "", durationMs: 1 };
  });
  const envFile = join(dir, "geoip.env");
  writeFileSync(envFile, "REGION=eu-west\nNODE_ENV=overridden-by-run-env\n", { mode: 0o644 });
  const result = await handle(command({ app: { ...APP, run: { ...APP.run, envFile } }, release: "v2", hook: "pre_deploy", command: ["x"], timeoutMs: 5_000, secrets: { DB: "x" } }));
  t.is(result.status, Status.OK, result.message ?? "");
  t.like(ran?.env, { REGION: "eu-west", NODE_ENV: "test" });
});
