import { closeSync, existsSync, openSync, readSync, statSync, unwatchFile, watchFile } from "node:fs";
import { join } from "node:path";
import { isValidName } from "@cutover/protocol";

/** Longest line sent; longer ones are cut (a log is for reading, not for transferring data). */
export const MAX_LINE_CHARS = 4096;
/** Lines per LogLines frame, so one frame stays far below the frame limit. */
export const MAX_LINES_PER_FRAME = 200;
/** How often a followed file is checked for growth. */
export const FOLLOW_POLL_MS = 200;
const MAX_INITIAL_LINES = 10_000;

/** The log files a TailLogs asks for: both colors of an app, or the agent's own log. */
export function logSources(stateDir: string, request: { app?: string | null; agentLog?: boolean | null }): { source: string; path: string }[] {
  const logDir = join(stateDir, "logs");
  if (request.agentLog) return [{ source: "agent", path: join(logDir, "agent.log") }];
  if (!request.app || !isValidName(request.app)) return [];
  return (["blue", "green"] as const).map((color) => ({ source: `${request.app}/${color}`, path: join(logDir, request.app!, `${color}.log`) }));
}

function readRange(path: string, start: number, end: number): string {
  if (end <= start) return "";
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(end - start);
    const read = readSync(fd, buffer, 0, buffer.length, start);
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** The last `count` lines of a file (read from the end, in bounded steps). */
export function lastLines(path: string, count: number): { lines: string[]; size: number } {
  if (!existsSync(path)) return { lines: [], size: 0 };
  const size = statSync(path).size;
  const wanted = Math.min(count, MAX_INITIAL_LINES);
  let start = size;
  let text = "";
  while (start > 0 && text.split("\n").length <= wanted + 1) {
    const from = Math.max(0, start - 64 * 1024);
    text = readRange(path, from, start) + text;
    start = from;
  }
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return { lines: wanted === 0 ? [] : lines.slice(-wanted).map(cut), size };
}

const cut = (line: string) => (line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);

export function* frames(lines: string[]): Generator<string[]> {
  for (let i = 0; i < lines.length; i += MAX_LINES_PER_FRAME) yield lines.slice(i, i + MAX_LINES_PER_FRAME);
}

/**
 * Follows a file from `offset`: calls `onLines` with each complete new line;
 * a file that shrank (rotated) is read again from its start.
 */
export function follow(path: string, offset: number, onLines: (lines: string[]) => void): () => void {
  let position = offset;
  let partial = "";
  const check = () => {
    if (!existsSync(path)) return;
    const size = statSync(path).size;
    if (size < position) position = 0;
    if (size === position) return;
    const text = partial + readRange(path, position, size);
    position = size;
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    if (lines.length > 0) onLines(lines.map(cut));
  };
  watchFile(path, { interval: FOLLOW_POLL_MS, persistent: false }, check);
  return () => unwatchFile(path, check);
}
