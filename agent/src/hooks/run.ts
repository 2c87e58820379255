import { once } from "node:events";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { HOOK_OUTPUT_TAIL_BYTES } from "@cutover/protocol";
import { execa } from "execa";
import type { ProcessSpec } from "../process/index.js";

/** One result shape for every way a hook ends (execa's, narrowed to what callers read). */
export interface HookResult {
  /** null when it did not exit by itself (killed, or never started). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** Killed at its timeout. */
  timedOut: boolean;
  /** The spawn failed (ENOENT, EACCES, a cwd that is gone): this says why. */
  spawnError?: string;
  /** Its last lines of stdout and stderr, interleaved as they came, at most `tailBytes`. */
  outputTail: string;
  durationMs: number;
}

export interface RunHookOptions {
  timeoutMs: number;
  /** Each line of output as it comes (at most MAX_LINE_CHARS of it); the first `streamLines` only. */
  onLine?: (line: string) => void;
  streamLines?: number;
  tailBytes?: number;
  /** Called with the hook's pid right after the spawn (the OOM score, as for an app). */
  onSpawn?: (pid: number) => void;
}

/** Lines of a hook streamed as events before the rest is only kept in its tail: a chatty hook must not flood the deploy's events. */
export const DEFAULT_STREAMED_LINES = 500;
/** How long the output may take to close once the hook's group is gone. */
const OUTPUT_CLOSE_WAIT_MS = 1_000;
/** A longer line is cut (streamed and in the tail). */
export const MAX_LINE_CHARS = 1_000;

/**
 * Runs a hook to its end through execa, never through a shell, in its own
 * process group: at the timeout the whole group is SIGKILLed (a hook that
 * forked is not left behind), and so is whatever of the group outlived the
 * hook once it exits. Never throws: the caller decides what a result means.
 */
export async function runHook(spec: ProcessSpec, options: RunHookOptions): Promise<HookResult> {
  const streamLines = options.streamLines ?? DEFAULT_STREAMED_LINES;
  const tail = new OutputTail(options.tailBytes ?? HOOK_OUTPUT_TAIL_BYTES);
  const started = performance.now();
  const child = execa(spec.file, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    extendEnv: false,
    uid: spec.uid,
    gid: spec.gid,
    stdin: "ignore",
    all: true,
    buffer: false,
    reject: false,
    // Its own process group, so the timeout can kill all of it; execa's own timeout would kill the leader only.
    detached: true,
    cleanup: false,
  });
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  let timedOut = false;
  const killGroup = () => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // The group is gone.
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, options.timeoutMs);
  let streamed = 0;
  const lines = child.all ? createInterface({ input: child.all, crlfDelay: Infinity }) : undefined;
  lines?.on("line", (raw: string) => {
    const line = raw.length > MAX_LINE_CHARS ? `${raw.slice(0, MAX_LINE_CHARS)}…` : raw;
    tail.push(line);
    if (streamed < streamLines) options.onLine?.(line);
    else if (streamed === streamLines) options.onLine?.(`… more output is not streamed; the last ${tail.limit} bytes end the hook's result`);
    streamed++;
  });
  const closed = lines ? once(lines, "close") : Promise.resolve();
  const result = await child;
  clearTimeout(timer);
  killGroup();
  // The last lines reach the tail once the output pipe closes, which the group's end makes it do.
  await Promise.race([closed, sleep(OUTPUT_CLOSE_WAIT_MS)]);
  lines?.close();
  const spawnFailed = result.failed && result.exitCode === undefined && result.signal === undefined && !timedOut;
  return {
    exitCode: result.exitCode ?? null,
    signal: (result.signal as NodeJS.Signals | undefined) ?? null,
    timedOut,
    ...(spawnFailed && { spawnError: result.originalMessage || result.shortMessage }),
    outputTail: tail.text(),
    durationMs: Math.round(performance.now() - started),
  };
}

/** The last lines of output that fit in `limit` bytes (a last line longer than that: its end). */
export class OutputTail {
  private readonly lines: string[] = [];
  private bytes = 0;
  constructor(readonly limit: number) {}

  push(line: string): void {
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line) + 1;
    while (this.bytes > this.limit && this.lines.length > 1) this.bytes -= Buffer.byteLength(this.lines.shift()!) + 1;
  }

  text(): string {
    const text = this.lines.join("\n");
    const bytes = Buffer.from(text);
    return bytes.length <= this.limit ? text : bytes.subarray(bytes.length - this.limit).toString("utf8").replace(/^\uFFFD+/, "");
  }
}
