import { setImmediate as nextTurn } from "node:timers/promises";

/**
 * Commands sent per event-loop turn in a fan-out. A slice costs a few ms of socket writes; between
 * slices the loop reads what came in (answers, heartbeats, pongs, API calls), so the first hosts'
 * answers are not held behind thousands of writes and the process stays responsive meanwhile.
 */
export const FAN_OUT_SLICE = 256;

/** Calls `send` for every item, `sliceSize` per event-loop turn, and resolves with all results in order. */
export async function inSlices<T, R>(items: readonly T[], send: (item: T) => Promise<R>, sliceSize = FAN_OUT_SLICE): Promise<R[]> {
  const results: Promise<R>[] = [];
  for (let start = 0; start < items.length; start += sliceSize) {
    if (start > 0) await nextTurn();
    for (const item of items.slice(start, start + sliceSize)) results.push(send(item));
  }
  return Promise.all(results);
}
