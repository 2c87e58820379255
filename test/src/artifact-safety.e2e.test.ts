import test from "ava";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "tar";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };

test.serial("an artifact whose entries would unpack outside their release directory is refused, and nothing is written outside", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const spec = writeExampleSpec(fleet.dir, PORTS);
  t.is((await fleet.coordinator.cli(["deploy", spec, "--release", "v1", "--json"])).exitCode, 0);

  // A tarball with a "../" entry, as an attacker (or a careless build) would make it.
  const work = join(fleet.dir, "evil", "inner");
  mkdirSync(work, { recursive: true });
  writeFileSync(join(fleet.dir, "evil", "escape.txt"), "outside\n");
  writeFileSync(join(work, "server.mjs"), "console.log('never runs')\n");
  const tarball = join(fleet.dir, "evil.tar.gz");
  await create({ gzip: true, file: tarball, cwd: work, preservePaths: true }, ["server.mjs", "../escape.txt"]);
  const evilSpec = writeExampleSpec(fleet.dir, PORTS, "evil.yml");
  writeFileSync(evilSpec, readFileSync(evilSpec, "utf8").replace(/^artifact: .*$/m, `artifact: ${tarball}`));

  const result = await fleet.coordinator.cli(["deploy", evilSpec, "--release", "v2", "--json"]);
  t.is(result.exitCode, 1);
  const host = (JSON.parse(result.stdout) as { hosts: { error: string }[] }).hosts[0]!;
  t.regex(host.error, /ERR_ARTIFACT_UNPACK/);
  const stateDir = fleet.agents[0]!.options.stateDir;
  t.false(existsSync(join(stateDir, "releases", "geoip", "escape.txt")), "nothing beside the release dirs");
  t.false(existsSync(join(stateDir, "releases", "escape.txt")));
  t.deepEqual(readdirSync(join(stateDir, "releases", "geoip")).filter((f) => !f.startsWith(".")), ["v1"], "no v2 tree left half-unpacked");
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v1");
});
