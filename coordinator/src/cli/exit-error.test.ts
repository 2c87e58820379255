import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { EXIT, exitCodeForRefusal, type ExitCode } from "./exit-error.js";

/** The real entry point, as `cutover` on a PATH runs it (bin/cutover.js, beside dist/). */
const CUTOVER_BIN = fileURLToPath(new URL("../../bin/cutover.js", import.meta.url));

test("the exit codes are the documented numbers (scripts test them; never renumber)", (t) => {
  t.deepEqual(EXIT, { ok: 0, failed: 1, changes: 2, usage: 64, refused: 65, unreachable: 69, internal: 70, tryLater: 75, denied: 77 });
});

const refusal = test.macro({
  exec(t, status: number, apiCode: string | undefined, expected: ExitCode) {
    t.is(exitCodeForRefusal(status, apiCode), expected);
  },
  title: (what = "", status: number, apiCode: string | undefined, expected: ExitCode) => `${what}: HTTP ${status} ${apiCode ?? "(no code)"} exits ${expected}`,
});

// Denied: who is asking, whatever else the answer says.
test("an unknown or revoked token", refusal, 401, "ERR_UNAUTHENTICATED", EXIT.denied);
test("an expired token", refusal, 401, "ERR_TOKEN_EXPIRED", EXIT.denied);
test("a role too low", refusal, 403, "ERR_FORBIDDEN", EXIT.denied);
test("a 401 without a JSON body", refusal, 401, undefined, EXIT.denied);
test("a 403 with a try-later code", refusal, 403, "ERR_APP_LOCKED", EXIT.denied);
// Try later: by the code, whatever the status.
test("a locked app", refusal, 423, "ERR_APP_LOCKED", EXIT.tryLater);
test("a deployment already running", refusal, 409, "ERR_DEPLOYMENT_IN_PROGRESS", EXIT.tryLater);
test("too many refused calls", refusal, 429, "ERR_RATE_LIMITED", EXIT.tryLater);
test("a try-later code on a 400", refusal, 400, "ERR_APP_LOCKED", EXIT.tryLater);
test("a try-later code on a 500", refusal, 500, "ERR_DEPLOYMENT_IN_PROGRESS", EXIT.tryLater);
// Try later: by the status, whatever the code.
test("a 429 from a proxy", refusal, 429, undefined, EXIT.tryLater);
test("a 503 from a proxy", refusal, 503, undefined, EXIT.tryLater);
test("a 503 with the coordinator's internal code", refusal, 503, "ERR_INTERNAL", EXIT.tryLater);
// Internal: any other 5xx.
test("the coordinator's internal error", refusal, 500, "ERR_INTERNAL", EXIT.internal);
test("a 502 from a proxy", refusal, 502, undefined, EXIT.internal);
// Refused as invalid: any other answer.
test("a bad request", refusal, 400, "ERR_BAD_REQUEST", EXIT.refused);
test("an unknown app", refusal, 404, "ERR_APP_UNKNOWN", EXIT.refused);
test("a failing preflight", refusal, 412, "ERR_PREFLIGHT_FAILED", EXIT.refused);
test("a release already live", refusal, 409, "ERR_ALREADY_LIVE", EXIT.refused);
test("the last admin token", refusal, 409, "ERR_LAST_ADMIN_TOKEN", EXIT.refused);
test("a body too large", refusal, 413, "ERR_BODY_TOO_LARGE", EXIT.refused);
test("a 404 without a JSON body", refusal, 404, undefined, EXIT.refused);

interface Run {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cutover ARGS` in a child process, with no CUTOVER_* setting from this one's environment. */
async function cutover(args: string[]): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CUTOVER_")));
  const child = spawn(process.execPath, [CUTOVER_BIN, ...args], { env: { ...env, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml" }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d));
  child.stderr.on("data", (d: Buffer) => (stderr += d));
  const [exitCode] = (await once(child, "close")) as [number | null];
  return { exitCode, stdout, stderr };
}

/** A loopback URL nothing listens on: a port the system handed out, then closed. */
async function closedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const unreachable = (url: string) => `cannot reach the coordinator at ${url} (ECONNREFUSED); is \`cutover server\` running? Set CUTOVER_URL or --url to its address`;

test("a coordinator nothing answers for: exit 69 and one line saying where it looked and what to do", async (t) => {
  const url = await closedUrl();
  const { exitCode, stdout, stderr } = await cutover(["hosts", "--url", url, "--token", "x"]);
  t.is(exitCode, 69);
  t.is(stdout, "");
  t.is(stderr, `cutover: ${unreachable(url)}\n`);
});

test("with --json, the same failure is one JSON object on one stderr line, with a code for the kind of failure", async (t) => {
  const url = await closedUrl();
  const { exitCode, stdout, stderr } = await cutover(["hosts", "--json", "--url", url, "--token", "x"]);
  t.is(exitCode, 69);
  t.is(stdout, "");
  t.is(stderr.split("\n").length, 2, stderr);
  t.true(stderr.endsWith("\n"));
  t.deepEqual(JSON.parse(stderr), { error: { code: "ERR_UNREACHABLE", message: unreachable(url) } });
});

const usage = test.macro({
  async exec(t, args: string[], message: RegExp) {
    const { exitCode, stdout, stderr } = await cutover(args);
    t.is(exitCode, 64, stderr);
    t.is(stdout, "");
    t.regex(stderr, message);
  },
  title: (what = "", args: string[]) => `${what} exits 64 before anything is sent: cutover ${args.join(" ")}`,
});

test("an unknown option", usage, ["hosts", "--url", "http://127.0.0.1:9", "--token", "x", "--colour", "blue"], /^error: unknown option '--colour'\n/);
test("an unknown verb", usage, ["deplyo", "--url", "http://127.0.0.1:9", "--token", "x"], /^error: unknown command 'deplyo'\n/);
test("a missing argument", usage, ["rollback", "--url", "http://127.0.0.1:9", "--token", "x"], /^error: missing required argument 'app'\n/);
test("no token", usage, ["hosts", "--url", "http://127.0.0.1:9"], /^cutover: no API token: set CUTOVER_TOKEN, pass --token/);

const usageJson = test.macro({
  async exec(t, args: string[], message: string) {
    const { exitCode, stdout, stderr } = await cutover([...args, "--json"]);
    t.is(exitCode, 64, stderr);
    t.is(stdout, "");
    t.is(stderr, `${JSON.stringify({ error: { code: "ERR_USAGE", message } })}\n`, "one JSON line, no usage text or help around it");
  },
  title: (what = "", args: string[]) => `with --json, ${what} is one JSON error too: cutover ${args.join(" ")} --json`,
});

test("an unknown option", usageJson, ["hosts", "--url", "http://127.0.0.1:9", "--token", "x", "--colour", "blue"], "unknown option '--colour'");
test("a missing argument", usageJson, ["rollback", "--url", "http://127.0.0.1:9", "--token", "x"], "missing required argument 'app'");
test("no token", usageJson, ["hosts", "--url", "http://127.0.0.1:9"], "no API token: set CUTOVER_TOKEN, pass --token, or put `token:` in /nonexistent-cutover-cli.yaml\n  (the first admin token is in the coordinator's data dir: <data-dir>/admin-token)");

test("--help exits 0 and prints the verbs on stdout", async (t) => {
  const { exitCode, stdout, stderr } = await cutover(["--help"]);
  t.is(exitCode, 0, stderr);
  t.regex(stdout, /^Usage: cutover \[options\] \[command\]/);
  t.regex(stdout, /^ {2}deploy /m);
  t.is(stderr, "");
});

test("--version exits 0", async (t) => {
  const { exitCode, stdout } = await cutover(["--version"]);
  t.is(exitCode, 0);
  t.regex(stdout, /^\d+\.\d+\.\d+/);
});
