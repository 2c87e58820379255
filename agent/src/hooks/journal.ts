import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { OperationResult } from "../commands/dispatcher.js";
import { writeFileAtomic } from "../state/atomic-write.js";

/** Records older than this are deleted: a coordinator re-asks within a deployment's progress deadline. */
export const HOOK_RECORD_KEEP_MS = 24 * 60 * 60_000;
/** Command ids the journal names files by (the coordinator's `<uuid>.pre_deploy`); others are not journaled. */
const RECORD_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * What the journal keeps of a hook run, by command id, so a restarted agent
 * never runs a hook twice: "running" is written before the spawn, "done" with
 * its result after. The output tail is left out (it may quote anything the
 * hook printed; the coordinator has it in its events already).
 */
export type HookRecord = { state: "running"; startedAt: number } | { state: "done"; result: OperationResult };

/** STATE/hooks/<command id>.json, written atomically. */
export class HookJournal {
  private readonly dir: string;
  constructor(stateDir: string, private readonly now: () => number = Date.now) {
    this.dir = join(stateDir, "hooks");
  }

  read(commandId: string): HookRecord | undefined {
    if (!RECORD_ID.test(commandId) || commandId.startsWith(".")) return undefined;
    try {
      return JSON.parse(readFileSync(join(this.dir, `${commandId}.json`), "utf8")) as HookRecord;
    } catch {
      return undefined;
    }
  }

  async write(commandId: string, record: HookRecord): Promise<void> {
    if (!RECORD_ID.test(commandId) || commandId.startsWith(".")) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const kept = record.state === "done" ? { state: "done", result: { ...record.result, hookRan: record.result.hookRan && { ...record.result.hookRan, outputTail: "" } } } : record;
    await writeFileAtomic(join(this.dir, `${commandId}.json`), JSON.stringify(kept), 0o600);
    this.prune();
  }

  private prune(): void {
    const before = this.now() - HOOK_RECORD_KEEP_MS;
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      try {
        if (statSync(path).mtimeMs < before) rmSync(path, { force: true });
      } catch {
        // Gone already.
      }
    }
  }
}
