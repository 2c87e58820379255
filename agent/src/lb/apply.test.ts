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
