// The zero-downtime promise (DESIGN §10), measured the way a user would see it: a
// keep-alive client hammering the proxy while the agent switches colors back and forth.
import test from "ava";
import { childPids } from "./proc.js";
import { switchSite, type SwitchResult } from "./switch.js";
import { managedFixture, median, startLoad, workersSettled } from "./test-helpers.js";

const SWITCHES = 10;
const REQUESTS_BETWEEN_SWITCHES = 60;
const WORKERS = 2;

for (const mode of ["reload", "live"] as const) {
  const retry = mode === "reload";
  test(`${mode} mode: ${SWITCHES} switches under keep-alive load, 0 failed requests${retry ? " (one retry on a closed reused connection)" : ", 0 socket errors without retry"}`, async (t) => {
    const f = await managedFixture(t, "loaded", { workerProcesses: WORKERS });
    await switchSite(f.runner, f.site("blue", mode));
    const pid = f.runner.masterPid()!;
    await workersSettled(f.runner, WORKERS);
    const workers = childPids(pid);

    const load = startLoad(f.address, f.listenPort, { concurrency: 4, retry, maxRequests: 100_000 });
    const results: SwitchResult[] = [];
    try {
      await load.completed(REQUESTS_BETWEEN_SWITCHES);
      for (let i = 0; i < SWITCHES; i += 1) {
        await workersSettled(f.runner, WORKERS);
        results.push(await switchSite(f.runner, f.site(i % 2 === 0 ? "green" : "blue", mode)));
        await load.completed(REQUESTS_BETWEEN_SWITCHES);
      }
    } finally {
      const report = await load.stop();
      t.log(`${mode}: ${report.requests} requests, ${report.failed} failed, ${report.socketErrors} socket errors, ${report.retries} retries, colors ${JSON.stringify(report.colors)}`);
      t.deepEqual(report.badAnswers, []);
      t.is(report.failed, 0);
      if (mode === "live") t.is(report.socketErrors, 0);
      t.true((report.colors.blue ?? 0) > 0 && (report.colors.green ?? 0) > 0, "both colors served during the run");
    }

    t.true(results.every((r) => r.reloaded === (mode === "reload")));
    if (mode === "live") t.deepEqual(childPids(pid), workers, "no worker churn in live mode");
    const durations = results.map((r) => r.durationMs);
    t.log(
      `${mode}: agent time per switch median ${median(durations).toFixed(2)} ms, max ${Math.max(...durations).toFixed(2)} ms; ` +
        `median steps ${JSON.stringify(stepMedians(results))}`,
    );
  });
}

function stepMedians(results: SwitchResult[]): Record<string, string> {
  const steps: Record<string, number[]> = {};
  for (const result of results) {
    for (const [step, ms] of Object.entries(result.steps)) (steps[step] ??= []).push(ms);
  }
  return Object.fromEntries(Object.entries(steps).map(([step, values]) => [step, median(values).toFixed(2)]));
}
