// What an apply costs the agent, per mode (docs/architecture.md, Budgets: reload < 50 ms of agent work
// besides nginx's worker handover, live < 5 ms). Logged, not asserted: the figures depend
// on the machine; the one assertion is the ordering that live mode exists for.
import test from "ava";
import { median } from "@cutover/testkit";
import { applyLbSite, type ApplyLbResult } from "./apply.js";
import { lbFixture } from "./test-helpers.js";

const APPLIES = 20;

function stepMedians(results: ApplyLbResult[]): Record<string, string> {
  const steps: Record<string, number[]> = {};
  for (const result of results) {
    for (const [step, ms] of Object.entries(result.steps)) (steps[step] ??= []).push(ms);
  }
  return Object.fromEntries(Object.entries(steps).map(([step, values]) => [step, median(values).toFixed(2)]));
}

test.serial("apply time per mode: live (dict update) is cheaper than reload (nginx -t, reload, handover)", async (t) => {
  const medians: Record<string, number> = {};
  for (const mode of ["reload", "live"] as const) {
    const f = await lbFixture(t);
    await applyLbSite(f.runner, f.site(mode));
    const results: ApplyLbResult[] = [];
    for (let i = 0; i < APPLIES; i += 1) {
      const weight = 1 + (i % 3);
      results.push(await applyLbSite(f.runner, f.site(mode, { backends: [f.entry("a", { weight }), f.entry("b"), f.entry("c", { state: i % 2 === 0 ? "drain" : "up" })] })));
    }
    t.true(results.every((r) => r.reloaded === (mode === "reload")));
    const wall = results.map((r) => r.durationMs);
    const work = results.map((r) => r.durationMs - r.handoverMs);
    medians[mode] = median(work);
    t.log(
      `${mode}: ${APPLIES} applies, median ${median(wall).toFixed(2)} ms wall (max ${Math.max(...wall).toFixed(2)}), ` +
        `${median(work).toFixed(2)} ms without nginx's worker handover; median steps ${JSON.stringify(stepMedians(results))}`,
    );
    await f.runner.stop({ graceful: false });
  }
  t.true(medians.live! < medians.reload!);
});
