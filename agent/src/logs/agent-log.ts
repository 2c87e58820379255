import { createWriteStream, fchmodSync, fstatSync, mkdirSync, openSync, type WriteStream } from "node:fs";
import { join } from "node:path";
import { DEFAULT_LOG_ROTATION, rotateIfLarge } from "../process/index.js";

/** agent.log's mode: its lines name apps, hosts, addresses and errors. */
export const AGENT_LOG_MODE = 0o600;

/**
 * The agent's own log lines go to stderr (journald under systemd) and to
 * STATE/logs/agent.log, rotated by size, so `cutover logs --agent` can show them.
 * The file is written through a stream (libuv's pool), never with a write per line
 * on the event loop: the session's heartbeats and pongs must not wait for the disk.
 * The file is AGENT_LOG_MODE, one an older agent made 0644 included.
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
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    rotateIfLarge(path, DEFAULT_LOG_ROTATION);
    // Opened here, not by the stream: the mode is set before the first line is queued.
    const fd = openSync(path, "a", AGENT_LOG_MODE);
    fchmodSync(fd, AGENT_LOG_MODE);
    size = fstatSync(fd).size;
    const stream = createWriteStream(path, { fd });
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
