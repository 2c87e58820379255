import test, { type ExecutionContext } from "ava";
import { isProcessError, type ProcessErrorCode } from "./errors.js";
import { processSpec, substitute, type RunSection, type SpecContext } from "./spec.js";
import { findUser } from "./users.js";

const VARS = { PORT: "7001", ADDRESS: "127.0.0.9", COLOR: "blue", RELEASE: "v1.2.3" };
const CTX: SpecContext = { port: 7001, address: "127.0.0.9", color: "blue", release: "v1.2.3", releaseDir: "/srv/releases/geoip/v1.2.3" };
const BASE_ENV = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8", TZ: "UTC", HOME: "/root", AWS_SECRET_ACCESS_KEY: "agent-secret", CUTOVER_TOKEN: "t" };
/** An agent running as an ordinary account: most tests here are not about root. */
const AGENT = { baseEnv: BASE_ENV, agentUid: 1000 };
const ROOT_AGENT = { baseEnv: BASE_ENV, agentUid: 0 };
const ALLOW_ROOT = "allow root apps on this host with allow_root_apps: true in /etc/cutover/agent.yaml (or the flag --allow-root-apps)";

const substitutes = test.macro({
  exec(t: ExecutionContext, template: string, expected: string) {
    t.is(substitute(template, VARS, "run.command[1]"), expected);
  },
  title: (given, template: string, expected: string) => given ?? `${JSON.stringify(template)} becomes ${JSON.stringify(expected)}`,
});

test(substitutes, "${PORT}", "7001");
test(substitutes, "--listen=${ADDRESS}:${PORT}", "--listen=127.0.0.9:7001");
test(substitutes, "${COLOR}-${RELEASE}.log", "blue-v1.2.3.log");
test(substitutes, "${PORT}${PORT}", "70017001");
test(substitutes, "plain", "plain");
test(substitutes, "", "");
test(substitutes, "$$", "$$");
test(substitutes, "$${PORT}", "$${PORT}");
test(substitutes, "$$${PORT}", "$$7001");
test(substitutes, "$HOME/x", "$HOME/x");
test(substitutes, "costs 5$", "costs 5$");
test(substitutes, "a $ b", "a $ b");

const refuses = test.macro({
  exec(t: ExecutionContext, template: string, code: ProcessErrorCode, message: string) {
    const error = t.throws(() => substitute(template, VARS, "run.env.URL"));
    t.true(isProcessError(error, code), `expected ${code}, got ${(error as { code?: string }).code}`);
    t.is(error.message, message);
  },
  title: (given, template: string, code: string) => given ?? `${JSON.stringify(template)} is refused with ${code}`,
});

const KNOWN = "use one of ${PORT}, ${ADDRESS}, ${COLOR}, ${RELEASE}";
test(refuses, "${HOME}", "ERR_UNKNOWN_VARIABLE", `run.env.URL uses \${HOME}, which the agent does not provide; ${KNOWN}`);
test(refuses, "x${port}", "ERR_UNKNOWN_VARIABLE", `run.env.URL uses \${port}, which the agent does not provide; ${KNOWN}`);
test(refuses, "${}", "ERR_UNKNOWN_VARIABLE", `run.env.URL uses \${}, which the agent does not provide; ${KNOWN}`);
test(refuses, "${PORT", "ERR_INVALID_RUN_SPEC", 'run.env.URL is "${PORT": "${" has no closing "}"');

test("processSpec substitutes argv and env, and passes on only PATH, LANG, TZ of the agent's env", (t) => {
  const run: RunSection = {
    command: ["node", "server.js", "--port", "${PORT}", "--host", "${ADDRESS}"],
    env: { NODE_ENV: "production", PUBLIC_URL: "http://${ADDRESS}:${PORT}/", TZ: "Asia/Seoul" },
  };
  t.deepEqual(processSpec(run, CTX, AGENT), {
    file: "node",
    args: ["server.js", "--port", "7001", "--host", "127.0.0.9"],
    cwd: "/srv/releases/geoip/v1.2.3",
    env: {
      PATH: "/usr/bin:/bin",
      LANG: "C.UTF-8",
      TZ: "Asia/Seoul",
      NODE_ENV: "production",
      PUBLIC_URL: "http://127.0.0.9:7001/",
      PORT: "7001",
      HOST: "127.0.0.9",
      COLOR: "blue",
      RELEASE: "v1.2.3",
    },
  });
});

test("the agent's PORT, HOST, COLOR and RELEASE win over run.env: the health gate checks that port", (t) => {
  const spec = processSpec({ command: ["app"], env: { PORT: "80", HOST: "0.0.0.0", COLOR: "red" } }, CTX, AGENT);
  t.is(spec.env.PORT, "7001");
  t.is(spec.env.HOST, "127.0.0.9");
  t.is(spec.env.COLOR, "blue");
});

test("PATH falls back to the standard directories when the agent has none", (t) => {
  const spec = processSpec({ command: ["app"], env: {} }, CTX, { baseEnv: {}, agentUid: 1000 });
  t.is(spec.env.PATH, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  t.false("LANG" in spec.env);
});

test("run.user becomes uid and gid, with HOME, USER and LOGNAME like a login", (t) => {
  const spec = processSpec({ command: ["app"], env: {}, user: "geoip" }, CTX, {
    ...ROOT_AGENT,
    lookupUser: (name) => (name === "geoip" ? { uid: 998, gid: 997, home: "/var/lib/geoip" } : t.fail() as never),
  });
  t.is(spec.uid, 998);
  t.is(spec.gid, 997);
  t.like(spec.env, { HOME: "/var/lib/geoip", USER: "geoip", LOGNAME: "geoip" });
});

test("without run.user there is no uid or gid: the app runs as the agent (here not root)", (t) => {
  const spec = processSpec({ command: ["app"], env: {}, user: "" }, CTX, AGENT);
  t.false("uid" in spec);
  t.false("gid" in spec);
  t.false("HOME" in spec.env);
});

test("a user missing from /etc/passwd is ERR_UNKNOWN_USER naming the user and the fix", (t) => {
  const error = t.throws(() => processSpec({ command: ["app"], env: {}, user: "no-such-user-cutover" }, CTX, AGENT));
  t.true(isProcessError(error, "ERR_UNKNOWN_USER"));
  t.is(
    error.message,
    'run.user "no-such-user-cutover" is not an account in /etc/passwd on this host; create it (useradd --system no-such-user-cutover) or change run.user',
  );
});

test("findUser reads passwd(5) lines and does not match on a prefix", (t) => {
  const passwd = "root:x:0:0:root:/root:/bin/bash\ngeoip-old:x:900:900::/home/old:/bin/sh\ngeoip:x:998:997:GeoIP:/var/lib/geoip:/usr/sbin/nologin\n";
  t.deepEqual(findUser(passwd, "geoip"), { uid: 998, gid: 997, home: "/var/lib/geoip" });
  t.deepEqual(findUser(passwd, "root"), { uid: 0, gid: 0, home: "/root" });
  t.true(isProcessError(t.throws(() => findUser(passwd, "geo")), "ERR_UNKNOWN_USER"));
});

test("the real /etc/passwd resolves root, on a host that allows root apps", (t) => {
  const spec = processSpec({ command: ["app"], env: {}, user: "root" }, CTX, { ...AGENT, rootApps: "allow" });
  t.is(spec.uid, 0);
  t.is(spec.gid, 0);
});

const refusesRoot = test.macro({
  exec(t, run: RunSection, options: Parameters<typeof processSpec>[2], why: string) {
    const error = t.throws(() => processSpec(run, CTX, options));
    t.true(isProcessError(error, "ERR_ROOT_APP_REFUSED"), String(error));
    t.is(error.message, `apps run as root only where the agent allows it: ${why}. Set run.user to an unprivileged account (e.g. cutover or nobody), or ${ALLOW_ROOT}`);
  },
  title: (title = "") => `a host that refuses root apps refuses ${title} with ERR_ROOT_APP_REFUSED naming allow_root_apps`,
});

test("no run.user under a root agent", refusesRoot, { command: ["app"], env: {} }, ROOT_AGENT, "the spec sets no run.user, so the app would run as the agent's user, root");
test("an empty run.user under a root agent", refusesRoot, { command: ["app"], env: {}, user: "" }, ROOT_AGENT, "the spec sets no run.user, so the app would run as the agent's user, root");
test("run.user root", refusesRoot, { command: ["app"], env: {}, user: "root" }, AGENT, 'run.user "root" is uid 0 on this host');
test("another name for uid 0", refusesRoot, { command: ["app"], env: {}, user: "toor" }, { ...AGENT, lookupUser: () => ({ uid: 0, gid: 0, home: "/root" }) }, 'run.user "toor" is uid 0 on this host');

test("a user whose primary group is root's", refusesRoot, { command: ["app"], env: {}, user: "wheel-ish" }, { ...AGENT, lookupUser: () => ({ uid: 1001, gid: 0, home: "/" }) }, 'run.user "wheel-ish" is in group 0 (root) on this host');

test("a host that allows root apps starts one without run.user as the agent", (t) => {
  const spec = processSpec({ command: ["app"], env: {} }, CTX, { ...ROOT_AGENT, rootApps: "allow" });
  t.false("uid" in spec);
});

test("an empty command and a bad env name are ERR_INVALID_RUN_SPEC", (t) => {
  t.true(isProcessError(t.throws(() => processSpec({ command: [], env: {} }, CTX, AGENT)), "ERR_INVALID_RUN_SPEC"));
  t.true(isProcessError(t.throws(() => processSpec({ command: [""], env: {} }, CTX, AGENT)), "ERR_INVALID_RUN_SPEC"));
  t.true(isProcessError(t.throws(() => processSpec({ command: ["app"], env: { "A=B": "x" } }, CTX, AGENT)), "ERR_INVALID_RUN_SPEC"));
});

test("an unknown variable in argv names its position", (t) => {
  const error = t.throws(() => processSpec({ command: ["app", "--dir", "${DATA_DIR}"], env: {} }, CTX, AGENT));
  t.true(isProcessError(error, "ERR_UNKNOWN_VARIABLE"));
  t.true(error.message.startsWith("run.command[2] uses ${DATA_DIR},"), error.message);
});

test("env_file's variables, then run.env, then secrets as given (never substituted); PORT and friends win over all", (t) => {
  const run: RunSection = {
    command: ["node", "server.js"],
    env: { MODE: "${COLOR}", FROM_FILE: "overridden" },
    fileEnv: { FROM_FILE: "file", ONLY_FILE: "f", PORT: "1" },
    secretEnv: { DATABASE_URL: "postgres://u:p${PORT}$$@db/x", MODE: "secret wins" },
  };
  const { env } = processSpec(run, CTX, AGENT);
  t.is(env.ONLY_FILE, "f");
  t.is(env.FROM_FILE, "overridden");
  t.is(env.DATABASE_URL, "postgres://u:p${PORT}$$@db/x", "a secret's ${...} is not substituted");
  t.is(env.MODE, "secret wins");
  t.is(env.PORT, "7001");
});

test("a secret with a bad variable name is refused without its value in the message", (t) => {
  const error = t.throws(() => processSpec({ command: ["x"], env: {}, secretEnv: { "1BAD": "hunter2" } }, CTX, AGENT));
  t.true(isProcessError(error, "ERR_INVALID_RUN_SPEC"));
  t.false(error!.message.includes("hunter2"));
});
