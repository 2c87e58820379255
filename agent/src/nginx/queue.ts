import type { NginxRunner } from "./runner.js";

// One config change at a time per nginx: app-site switches and load-balancer
// applies share candidates, the test config and reloads.
const queues = new WeakMap<NginxRunner, Promise<unknown>>();

/** Runs `work` after every change queued before it on the same runner. */
export function exclusive<T>(runner: NginxRunner, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(runner) ?? Promise.resolve();
  const next = previous.then(work, work);
  queues.set(
    runner,
    next.catch(() => undefined),
  );
  return next;
}
