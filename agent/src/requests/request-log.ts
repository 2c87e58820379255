import { readdirSync, statSync } from "node:fs";
import { readdir, open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { countLogLines, type CountedSite, type UpstreamCounts } from "../nginx/request-counting.js";

/** A request log is emptied once this much has been read from it (nginx appends with O_APPEND, so it goes on at the new end). */
const TRUNCATE_AFTER_BYTES = 16 * 1024 * 1024;
/** At most this much is read from one log per heartbeat; the rest is read at the next. */
const MAX_READ_BYTES = 4 * 1024 * 1024;

interface LogState {
  site: CountedSite;
  app: string;
  offset: number;
  counts: Map<string, UpstreamCounts>;
}

/**
 * The reload-mode request logs (`<site>.<app>.log` in one directory), counted
 * as they grow: each read takes the complete lines written since the last one.
 * A log that was there when this agent started is read from where it ended
 * then (what came before is not counted again); one that appeared since (a
 * site loaded later) from its start. The counts are in memory, so they start
 * from zero with the agent (`since`).
 */
export class RequestLogs {
  readonly since = Date.now();
  readonly #logs = new Map<string, LogState>();
  /** The size of each log there when the agent started: where its reading begins. */
  readonly #sizesAtStart = new Map<string, number>();

  constructor(private readonly dir: string) {
    let names: string[] = [];
    try {
      names = readdirSync(dir);
    } catch {
      // No directory yet: every log will be new.
    }
    for (const name of names) {
      try {
        this.#sizesAtStart.set(join(dir, name), statSync(join(dir, name)).size);
      } catch {
        // Gone already.
      }
    }
  }

  /** Every upstream counted so far, after reading what the logs gained. */
  async read(): Promise<UpstreamCounts[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      const match = /^(app|lb)\.([A-Za-z0-9][A-Za-z0-9_-]*)\.log$/.exec(name);
      if (!match) continue;
      const path = join(this.dir, name);
      let state = this.#logs.get(path);
      if (!state) {
        state = { site: match[1] as CountedSite, app: match[2]!, offset: this.#sizesAtStart.get(path) ?? 0, counts: new Map() };
        this.#logs.set(path, state);
      }
      await this.#readGrowth(path, state);
    }
    return [...this.#logs.values()].flatMap((s) => [...s.counts.values()]);
  }

  async #readGrowth(path: string, state: LogState): Promise<void> {
    const size = (await stat(path).catch(() => undefined))?.size;
    if (size === undefined) return;
    if (size < state.offset) state.offset = 0; // emptied or replaced under us
    if (size === state.offset) return;
    const file = await open(path, "r");
    try {
      const length = Math.min(size - state.offset, MAX_READ_BYTES);
      const { buffer, bytesRead } = await file.read(Buffer.alloc(length), 0, length, state.offset);
      const text = buffer.subarray(0, bytesRead).toString("latin1");
      state.offset += countLogLines(text, state.site, state.app, state.counts);
    } finally {
      await file.close();
    }
    if (state.offset >= TRUNCATE_AFTER_BYTES && state.offset === size) {
      await truncate(path, 0);
      state.offset = 0;
    }
  }
}
