import { createWriteStream, mkdirSync, statSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { DEFAULT_LOG_ROTATION, rotateIfLarge } from "../process/index.js";

/**
 * The agent's own log lines go to stderr (journald under systemd) and to
 * STATE/logs/agent.log, rotated by size, so `cutover logs --agent` can show them.
 * The file is written through a stream (libuv's pool), never with a write per line
 * on the event loop: the session's heartbeats and pongs must not wait for the disk.
 */
export function agentLogWriter(stateDir: string): (line: string) => void {
  const dir = join(stateDir, "logs");
  const path = join(dir, "agent.log");
  let file: WriteStream | undefined;
  let size = 0;
  let fileOk = true;
  const disable = (error: Error) => {
    if (!fileOk) return;
    fileOk = false;
    process.stderr.write(`cannot write ${path}: ${error.message}; logging to stderr only\n`);
  };
  const open = () => {
    mkdirSync(dir, { recursive: true });
    rotateIfLarge(path, DEFAULT_LOG_ROTATION);
    try {
      size = statSync(path).size;
    } catch {
      size = 0;
    }
    const stream = createWriteStream(path, { flags: "a" });
    stream.on("error", disable);
    return stream;
  };
  return (line) => {
    process.stderr.write(`${line}\n`);
    if (!fileOk) return;
    try {
      if (!file || size >= DEFAULT_LOG_ROTATION.maxBytes) {
        // The old stream keeps its descriptor: what it still buffers lands in agent.log.1.
        file?.end();
        file = open();
      }
      const text = `${line}\n`;
      size += Buffer.byteLength(text);
      file.write(text);
    } catch (error) {
      disable(error as Error);
    }
  };
}
