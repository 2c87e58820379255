// Keeps cores busy at normal priority, for a bounded time, then exits by itself:
// `node scripts/cpu-hog.mjs [--workers N] [--seconds S]` (defaults: one per core, 600 s).
// The saturation test starts it beside a deploy; run it beside `npm test` to try the
// suite on a saturated machine. It sends no traffic anywhere.
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { Worker, isMainThread, workerData } from "node:worker_threads";

if (isMainThread) {
  const { values } = parseArgs({ options: { workers: { type: "string" }, seconds: { type: "string" } } });
  const workers = Number(values.workers ?? cpus().length);
  const seconds = Number(values.seconds ?? 600);
  if (!(workers >= 1 && seconds > 0)) {
    console.error("usage: node scripts/cpu-hog.mjs [--workers N (>= 1)] [--seconds S (> 0)]");
    process.exit(2);
  }
  const until = Date.now() + seconds * 1000;
  for (let i = 0; i < workers; i++) new Worker(new URL(import.meta.url), { workerData: { until } });
  console.log(`cpu-hog: ${workers} busy thread(s) for ${seconds} s`);
} else {
  // Spin in slices, so the thread ends on time without a timer it would starve.
  let x = 0;
  while (Date.now() < workerData.until) for (let i = 0; i < 1e6; i++) x = (x * 31 + i) | 0;
}
