// The spec's hooks: what a valid section becomes, and the exact issue an operator reads for each bad one.
import test from "ava";
import { parseSpec, SpecError, type SpecIssue } from "./index.js";

const FILE = "/srv/geoip/cutover.yml";
const BASE = `app: geoip
run: { command: ["node", "server.js"] }
ports: { blue: 7001, green: 7002 }
proxy: { listen: 80 }
health: { tcp: {} }
hosts: { role: geoip }
`;
const parse = (text: string) => parseSpec(text, { file: FILE, exists: () => null });

const COMMAND_RULE = 'the program and its arguments as a list of strings, like ["node", "migrate.js"] (no shell), at most 256 entries';
const TIMEOUT_RULE = 'a duration like "250ms", "1.5s", "10m", "1h" or "1m30s", from 1s to 1h';

test("a spec without hooks has none", (t) => {
  t.false("hooks" in parse(BASE));
});

test("hooks get their default timeouts: 5m before the deploy, 1m after each switch", (t) => {
  const spec = parse(`${BASE}hooks:\n  pre_deploy: { command: [node, migrate.js, "\${RELEASE}"] }\n  post_switch: { command: [curl, "http://\${ADDRESS}:\${PORT}/"] }\n`);
  t.deepEqual(spec.hooks, {
    preDeploy: { command: ["node", "migrate.js", "${RELEASE}"], timeoutMs: 300_000 },
    postSwitch: { command: ["curl", "http://${ADDRESS}:${PORT}/"], timeoutMs: 60_000 },
  });
});

test("one hook alone, with its timeout as written", (t) => {
  const spec = parse(`${BASE}hooks:\n  post_switch: { command: [./smoke, "\${COLOR}", "$$\{LITERAL}"], timeout: 90s }\n`);
  t.deepEqual(spec.hooks, { postSwitch: { command: ["./smoke", "${COLOR}", "$${LITERAL}"], timeoutMs: 90_000 } });
});

test("an empty hooks section is no hooks", (t) => {
  t.false("hooks" in parse(`${BASE}hooks: {}\n`));
});

const refused = test.macro({
  exec(t, hooks: string, issues: SpecIssue[]) {
    const error = t.throws(() => parse(`${BASE}${hooks}`), { instanceOf: SpecError });
    t.is(error.code, "ERR_SPEC_INVALID");
    t.deepEqual(error.issues, issues);
  },
  title: (title) => `refuses ${title}`,
});

test("a hook given as a shell string", refused, "hooks:\n  pre_deploy: { command: \"npm run migrate && echo ok\" }\n", [
  { field: "hooks.pre_deploy.command", expected: COMMAND_RULE, got: '"npm run migrate && echo ok"' },
]);
test("a hook without a command", refused, "hooks:\n  pre_deploy: { timeout: 5m }\n", [{ field: "hooks.pre_deploy.command", expected: COMMAND_RULE, got: "nothing" }]);
test("a hook that is not a mapping", refused, "hooks:\n  post_switch: [node, x.js]\n", [
  { field: "hooks.post_switch", expected: 'a mapping like { command: ["node", "migrate.js"], timeout: 5m }', got: "a list" },
]);
test("numbers, an empty program and NUL in a hook's argv", refused, 'hooks:\n  pre_deploy: { command: ["", 7, "a\\0b"] }\n', [
  { field: "hooks.pre_deploy.command[0]", expected: "a program name or path", got: '""' },
  { field: "hooks.pre_deploy.command[1]", expected: "a string (quote numbers and booleans)", got: "7" },
  { field: "hooks.pre_deploy.command[2]", expected: "a string without NUL characters", got: '"a\\u0000b"' },
]);
test("${PORT} in pre_deploy, which runs before the release has a port", refused, 'hooks:\n  pre_deploy: { command: [node, warm.js, "${PORT}"] }\n', [
  { field: "hooks.pre_deploy.command[2]", expected: "only ${RELEASE}, ${ADDRESS} in this hook", got: '"${PORT}" uses ${PORT}' },
]);
test("an unknown variable in post_switch", refused, 'hooks:\n  post_switch: { command: [node, "${SECRET}"] }\n', [
  { field: "hooks.post_switch.command[1]", expected: "only ${PORT}, ${ADDRESS}, ${COLOR}, ${RELEASE} in this hook", got: '"${SECRET}" uses ${SECRET}' },
]);
test("hook timeouts out of bounds", refused, "hooks:\n  pre_deploy: { command: [a], timeout: 500ms }\n  post_switch: { command: [b], timeout: 2h }\n", [
  { field: "hooks.pre_deploy.timeout", expected: TIMEOUT_RULE, got: '"500ms"' },
  { field: "hooks.post_switch.timeout", expected: TIMEOUT_RULE, got: '"2h"' },
]);
test("a hook timeout as a bare number", refused, "hooks:\n  pre_deploy: { command: [a], timeout: 60 }\n", [{ field: "hooks.pre_deploy.timeout", expected: TIMEOUT_RULE, got: "60" }]);
test("a pre_deploy timeout past the progress deadline", refused, "strategy: { progress_deadline: 10m }\nhooks:\n  pre_deploy: { command: [a], timeout: 10m }\n", [
  {
    field: "hooks.pre_deploy.timeout",
    expected: "less than strategy.progress_deadline (600000ms), or the deploy's deadline passes while the hook runs",
    got: '"10m"',
  },
]);
test("an unknown hook and an unknown hook key", refused, "hooks:\n  pre_deploi: { command: [a] }\n  post_switch: { command: [b], shell: true }\n", [
  { field: "hooks.pre_deploi", expected: "one of the keys pre_deploy, post_switch", got: 'unknown key "pre_deploi" (did you mean "pre_deploy"?)' },
  { field: "hooks.post_switch.shell", expected: "one of the keys command, timeout", got: 'unknown key "shell"' },
]);
test("more than 256 arguments", refused, `hooks:\n  pre_deploy: { command: [${Array.from({ length: 257 }, () => "x").join(", ")}] }\n`, [
  { field: "hooks.pre_deploy.command", expected: COMMAND_RULE, got: "a list" },
]);
