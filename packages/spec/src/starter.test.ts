import test from "ava";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSpec } from "./parse.js";
import { starterSpec } from "./starter.js";

test("the starter spec parses as written once its artifact exists: a blue/green app named as asked", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-starter-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, "dist"));
  const spec = parseSpec(starterSpec("billing"), { file: join(dir, "app.yml") });
  t.is(spec.app, "billing");
  t.is(spec.run.user, "billing");
  t.deepEqual(spec.hosts, { role: "billing" });
  t.is(spec.strategy.type, "bluegreen");
  t.deepEqual(spec.ports, { blue: 7001, green: 7002 });
});
