import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_LOG_ROTATION, rotateIfLarge } from "../process/index.js";

/** Checks the size every this many lines (rotation is by size, like the instance logs). */
const ROTATE_CHECK_EVERY = 500;

/**
 * The agent's own log lines go to stderr (journald under systemd) and to
 * STATE/logs/agent.log, rotated by size, so `cutover logs --agent` can show them.
 */
export function agentLogWriter(stateDir: string): (line: string) => void {
  const dir = join(stateDir, "logs");
  const path = join(dir, "agent.log");
  let written = 0;
  let fileOk = true;
  return (line) => {
    process.stderr.write(`${line}\n`);
    if (!fileOk) return;
    try {
      if (written++ % ROTATE_CHECK_EVERY === 0) {
        mkdirSync(dir, { recursive: true });
        rotateIfLarge(path, DEFAULT_LOG_ROTATION);
      }
      appendFileSync(path, `${line}\n`);
    } catch (error) {
      fileOk = false;
      process.stderr.write(`cannot write ${path}: ${(error as Error).message}; logging to stderr only\n`);
    }
  };
}
