import test from "ava";
import { performance } from "node:perf_hooks";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";
import { CUTOVER_BIN, spawnWatched } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const PORTS = { listen: 8080, blue: 7001, green: 7002 };

test.serial("cutover logs shows the app's output, --follow streams new lines as the app prints them, --agent shows the agent's own log", async (t) => {
  const fleet = await startFleet(t, { hosts: 2 });
  const v1 = await fleet.coordinator.cli(["deploy", writeExampleSpec(fleet.dir, PORTS), "--release", "v1", "--json"]);
  t.is(v1.exitCode, 0, v1.stderr);

  const past = await fleet.coordinator.cli(["logs", "geoip", "--lines", "50"]);
  t.is(past.exitCode, 0, past.stderr);
  t.regex(past.stdout, /^web-1 geoip\/blue \| .*listening on 127\.\d+\.\d+\.11:7001 \(http\)$/m);
  t.regex(past.stdout, /^web-2 geoip\/blue \| .*listening on 127\.\d+\.\d+\.12:7001 \(http\)$/m);

  const following = spawnWatched("logs -f", CUTOVER_BIN, ["logs", "geoip", "--host", "web-1", "--lines", "0", "--follow"], {
    CUTOVER_URL: fleet.coordinator.url,
    CUTOVER_TOKEN: fleet.coordinator.adminToken,
    CUTOVER_CONFIG: "/nonexistent",
  });
  t.teardown(() => following.kill());
  // The stream opens a moment after the process starts: a request made before then may not show, so retry.
  const marker = `/api/v1/geoip/10.0.0.${Math.floor(Math.random() * 250)}`;
  let shownAfterMs = -1;
  for (let attempt = 0; attempt < 20 && shownAfterMs < 0; attempt++) {
    const sent = performance.now();
    await getThroughProxy(fleet.addresses[0]!, PORTS.listen, marker);
    const line = await following.waitForLine(new RegExp(`GET ${marker.replaceAll(".", "\\.")} 200`), 0, 3000).catch(() => undefined);
    if (line) shownAfterMs = performance.now() - sent;
  }
  t.true(shownAfterMs >= 0, "the request's log line showed up in cutover logs --follow");
  t.log(`a line the app printed reached cutover logs --follow ${shownAfterMs.toFixed(0)} ms after the request`);

  const agentLog = await fleet.coordinator.cli(["logs", "--agent", "--host", "web-2", "--lines", "200"]);
  t.is(agentLog.exitCode, 0, agentLog.stderr);
  t.regex(agentLog.stdout, /^web-2 agent \| .*agent: starting name=web-2/m);

  const nobody = await fleet.coordinator.cli(["logs", "nosuchapp"]);
  t.is(nobody.exitCode, 65, "refused: no host runs that app (ERR_NO_HOSTS)");
  t.regex(nobody.stderr, /no online host runs nosuchapp/);
});
