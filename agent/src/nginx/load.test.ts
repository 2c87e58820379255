// The zero-downtime promise (docs/architecture.md, Budgets), measured the way a user would see it: a
// keep-alive client hammering the proxy while the agent switches colors back and forth.
// Apps and client run in a child process so the switch times measured here are the
// agent's own, not the agent's event loop also serving the apps' traffic.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createManagedRunner } from "./managed.js";
import { childPids } from "./proc.js";
import type { SiteConfig } from "./site.js";
import { switchSite, type SwitchResult } from "./switch.js";
import { freePort, median, randomLoopback, startLoadChild, workersSettled } from "./test-helpers.js";

const SWITCHES = 10;
const REQUESTS_BETWEEN_SWITCHES = 100;
const WORKERS = 2;

for (const mode of ["reload", "live"] as const) {
  const retry = mode === "reload";
  // Serial: the two runs would otherwise share two cores and measure each other.
  test.serial(`${mode} mode: ${SWITCHES} switches under keep-alive load, 0 failed requests${retry ? " (one retry on a closed reused connection)" : ", 0 socket errors without retry"}`, async (t) => {
    const stateDir = mkdtempSync(join(tmpdir(), "cutover-load-"));
    const runner = await createManagedRunner({ stateDir, workerProcesses: WORKERS });
    t.teardown(async () => {
      await runner.stop({ graceful: false }).catch(() => undefined);
      rmSync(stateDir, { recursive: true, force: true });
    });
    const address = randomLoopback();
    // The load child's two app ports first: a port picked alongside could be the one the kernel hands it next.
    const load = await startLoadChild(t, address);
    const listenPort = await freePort(address);
    await runner.start();
    const site = (i: number): SiteConfig => ({
      app: "loaded",
      protocol: "http",
      listenAddress: address,
      listenPort,
      upstreamAddress: address,
      livePort: i % 2 === 0 ? load.green : load.blue,
      switchMode: mode,
    });

    await switchSite(runner, site(1));
    await workersSettled(runner, WORKERS);
    const pid = runner.masterPid()!;
    const workers = childPids(pid);

    load.start(listenPort, { concurrency: 4, ratePerSec: 400, retry, maxRequests: 200_000 });
    const results: SwitchResult[] = [];
    const cpuMs: number[] = []; // this process runs only the agent side: its CPU time is the agent's work
    try {
      await load.completed(REQUESTS_BETWEEN_SWITCHES);
      for (let i = 0; i < SWITCHES; i += 1) {
        const cpu = process.cpuUsage();
        results.push(await switchSite(runner, site(i)));
        const used = process.cpuUsage(cpu);
        cpuMs.push((used.user + used.system) / 1000);
        await load.completed(REQUESTS_BETWEEN_SWITCHES);
      }
    } finally {
      const report = await load.stop();
      t.log(
        `${mode}: ${report.requests} requests, ${report.failed} failed, ${report.socketErrors} socket errors, ` +
          `${report.retries} retries, colors ${JSON.stringify(report.answers)}`,
      );
      t.deepEqual(report.failures, []);
      t.is(report.failed, 0);
      if (mode === "live") t.is(report.socketErrors, 0);
      t.true((report.answers.blue ?? 0) > 0 && (report.answers.green ?? 0) > 0, "both colors served during the run");
    }

    t.true(results.every((r) => r.reloaded === (mode === "reload")));
    if (mode === "live") t.deepEqual(childPids(pid), workers, "no worker churn in live mode");
    const durations = results.map((r) => r.durationMs);
    const work = results.map((r) => r.durationMs - r.handoverMs);
    t.log(
      `${mode}: per switch median ${median(durations).toFixed(2)} ms wall (max ${Math.max(...durations).toFixed(2)}), ` +
        `${median(work).toFixed(2)} ms without nginx's worker handover (max ${Math.max(...work).toFixed(2)}); ` +
        `agent CPU median ${median(cpuMs).toFixed(2)} ms; median steps ${JSON.stringify(stepMedians(results))}`,
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
