import type { NginxRunner } from "./runner.js";

// One config change at a time per nginx: app-site switches and load-balancer
// applies share candidates, the test config and reloads.
const queues = new WeakMap<NginxRunner, Promise<unknown>>();

/**
 * Runs `work` after every change queued before it on the same runner. `tail`, when given,
 * names work that goes on after `work` resolved (a live switch's fallback write): the
 * caller has its answer, the next change waits for that too.
 */
export function exclusive<T>(runner: NginxRunner, work: () => Promise<T>, tail?: (value: T) => Promise<unknown>): Promise<T> {
  const previous = queues.get(runner) ?? Promise.resolve();
  const next = previous.then(work, work);
  queues.set(
    runner,
    next.then((value) => tail?.(value)).catch(() => undefined),
  );
  return next;
}
