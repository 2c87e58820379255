import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { agentLogWriter } from "./agent-log.js";

function stateDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-agent-log-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("agent.log is created 0600 in a 0700 logs dir, whatever the umask (issue 11, finding 8)", (t) => {
  const dir = stateDir(t);
  const previous = process.umask(0);
  t.teardown(() => process.umask(previous));
  agentLogWriter(dir)("agent first line");
  t.is(statSync(join(dir, "logs", "agent.log")).mode & 0o777, 0o600);
  t.is(statSync(join(dir, "logs")).mode & 0o777, 0o700);
});

test("an agent.log an older agent left 0644 becomes 0600 at the next start, its lines kept", (t) => {
  const dir = stateDir(t);
  mkdirSync(join(dir, "logs"));
  const path = join(dir, "logs", "agent.log");
  writeFileSync(path, "agent old line\n");
  chmodSync(path, 0o644);
  agentLogWriter(dir)("agent new line");
  t.is(statSync(path).mode & 0o777, 0o600);
  t.true(readFileSync(path, "utf8").startsWith("agent old line\n"));
});
