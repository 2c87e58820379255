// Integration: real nginx (managed mode), real backends on their own loopback addresses,
// every answer read through the LB as a user would.
import test from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { childPids } from "../nginx/proc.js";
import { applyLbSite, removeLbSite } from "./apply.js";
import { lbRevision } from "./config.js";
import { LbError } from "./errors.js";
import { lbControlSocket, lbSitePath } from "./names.js";
import { readLbSite } from "./read.js";
import { startLoad } from "@cutover/testkit";
import { freePort, lbFixture } from "./test-helpers.js";

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: first apply reloads; users reach an up backend, named by X-Cutover-Backend, under the config's revision`, async (t) => {
    const f = await lbFixture(t);
    const site = f.site(mode, { backends: [f.entry("a"), f.entry("b", { state: "drain" }), f.entry("c", { state: "down" })] });
    const result = await applyLbSite(f.runner, site);
    t.like(result, { app: "demo", mode, reloaded: true, revision: lbRevision(site) });
    t.true(result.durationMs > 0);
    for (let i = 0; i < 10; i += 1) {
      const answer = await f.get();
      t.like(answer, { status: 200, body: "a", backend: f.backend("a").key, revision: lbRevision(site) });
    }
    t.deepEqual(
      readdirSync(f.runner.paths.sitesDir),
      ["cutover-lb.demo.conf"],
      "no candidate or temp file beside the site, and the name cannot be an app site's",
    );
  });
}

const SPLIT_REQUESTS = 2000;
const SPLIT_TOLERANCE = 0.05;

for (const mode of ["reload", "live"] as const) {
  test(`${mode} mode: weights 1:3 split ${SPLIT_REQUESTS} keep-alive requests 25%/75% within ±${SPLIT_TOLERANCE * 100} points`, async (t) => {
    const f = await lbFixture(t, { backends: ["a", "b"] });
    await applyLbSite(f.runner, f.site(mode, { backends: [f.entry("a", { weight: 1 }), f.entry("b", { weight: 3 })] }));
    const load = startLoad({
      address: f.address,
      port: f.listenPort,
      concurrency: 4,
      retry: false,
      maxRequests: SPLIT_REQUESTS,
      classify: (status, _headers, body) => (status === 200 ? body : null),
    });
    const report = await load.completed(SPLIT_REQUESTS).then(() => load.stop());
    t.log(`${mode}: ${JSON.stringify(report.answers)} over ${report.requests} requests`);
    t.is(report.failed, 0);
    const total = (report.answers.a ?? 0) + (report.answers.b ?? 0);
    t.is(total, SPLIT_REQUESTS);
    t.true(Math.abs((report.answers.b ?? 0) / total - 0.75) <= SPLIT_TOLERANCE, JSON.stringify(report.answers));

    // And the other way round, applied on the running site.
    await applyLbSite(f.runner, f.site(mode, { backends: [f.entry("a", { weight: 3 }), f.entry("b", { weight: 1 })] }));
    const after = await Promise.all(Array.from({ length: 40 }, () => f.get()));
    const a = after.filter((answer) => answer.body === "a").length;
    t.true(Math.abs(a / after.length - 0.75) <= 0.1, `a answered ${a} of ${after.length}`);
  });
}
