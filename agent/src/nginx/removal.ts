import type { ConfigChangeError } from "./errors.js";
import { exclusive } from "./queue.js";
import type { Handover, NginxRunner } from "./runner.js";
import type { FileChange } from "./change.js";
import { discardCandidate, restoreFile, writeCandidate } from "./site-files.js";

// Removing a site (app or LB): the other config change besides change.ts's, with no dict
// and nothing to confirm: test without the files, remove, reload; a failed reload restores.

/** What removing a site needs: its files as they are now, how a failure is told, what follows. */
export interface Removal {
  /** Read inside the queue: the files to remove and their content, empty when there is no site. */
  files(): readonly { path: string; previous: string }[];
  /** Read inside the queue after files(): other files that change with the removal (a port's 404 server), tested and put back with it. */
  alsoChanged?: () => readonly FileChange[];
  asError(error: unknown): ConfigChangeError<string>;
  testFailed(output: string): Error;
  onLoaded?: (handover: Handover) => void;
  /** Once removed and reloaded, e.g. the site's dict entry. */
  after?: () => Promise<void>;
}

/**
 * Tests the config without a site's files, removes them and reloads (when nginx runs); a
 * failed reload puts them back. Resolves false when there was nothing to remove. One change
 * at a time per nginx, in the queue runChange uses.
 */
export function removeFiles(runner: NginxRunner, removal: Removal): Promise<boolean> {
  return exclusive(runner, async () => {
    const removed = removal.files();
    if (removed.length === 0) return false;
    const files: readonly FileChange[] = [...removed.map((file) => ({ ...file, next: null })), ...(removal.alsoChanged?.() ?? [])];
    const candidates = new Map<string, string | null>();
    for (const file of files) candidates.set(file.path, file.next === null ? null : writeCandidate(file.path, file.next));
    const verdict = await runner.test(candidates).finally(() => Promise.all(files.map((file) => discardCandidate(file.path))));
    if (!verdict.ok) throw removal.testFailed(verdict.output);
    for (const file of files) await restoreFile(file.path, file.next);
    try {
      if (runner.isRunning()) await reloadAndRetire(runner, removal, {});
    } catch (error) {
      const failure = removal.asError(error);
      try {
        for (const file of files) await restoreFile(file.path, file.previous);
        await reloadAndRetire(runner, removal, { failFast: false });
        failure.rolledBack = true;
      } catch (rollbackError) {
        failure.rollbackError = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      }
      throw failure;
    }
    await removal.after?.();
    return true;
  });
}

async function reloadAndRetire(runner: NginxRunner, removal: Removal, options: { failFast?: boolean }): Promise<void> {
  const handover = await runner.reload(options);
  await runner.retired(handover);
  removal.onLoaded?.(handover);
}
