import test from "ava";
import type { DeploymentView } from "../api/deployments.js";
import { deploymentJson, LiveProgress, PlainProgress, renderDeploymentSummary } from "./progress.js";

const at = Date.UTC(2026, 10, 27, 1, 2, 3);

test("plain progress prints one line per event with the time and the host", (t) => {
  let out = "";
  const view = new PlainProgress((text) => (out += text));
  view.event({ id: 1, at, hostName: null, kind: "batch", message: "batch 1/1: web-1" });
  view.event({ id: 2, at, hostName: "web-1", kind: "step", message: "starting v2 on green (port 7002)" });
  t.is(out, "01:02:03 *            batch 1/1: web-1\n01:02:03 web-1        starting v2 on green (port 7002)\n");
});

test("the live view redraws one line per host in place", (t) => {
  let out = "";
  const view = new LiveProgress((text) => (out += text));
  view.event({ id: 1, at, hostName: "web-1", kind: "step", message: "health gate" });
  view.event({ id: 2, at, hostName: "web-2", kind: "step", message: "starting" });
  view.event({ id: 3, at, hostName: "web-1", kind: "step", message: "switched" });
  const last = out.split("\x1b[3A").at(-1)!;
  t.is(last, "\x1b[2K\n\x1b[2K  web-1          switched\n\x1b[2K  web-2          starting\n");
});

const view: DeploymentView = {
  id: "d1", app: "geoip", kind: "deploy", release: "v2", strategy: "bluegreen", state: "rolled_back",
  error: "1 host(s) failed, more than max_failures=0", createdBy: "admin", createdAt: "2026-11-27T01:02:03.000Z",
  finishedAt: "2026-11-27T01:02:05.500Z", durationMs: 2500,
  hosts: [
    { name: "web-1", batch: 1, outcome: "failed", liveColor: "blue", release: "v1", previousRelease: null, error: "health (ERR_HEALTH_DEADLINE)", switchMs: null, bootMs: null, totalMs: 3000, handoverMs: null },
    { name: "web-2", batch: 2, outcome: "skipped", liveColor: null, release: null, previousRelease: null, error: null, switchMs: null, bootMs: null, totalMs: null, handoverMs: null },
  ],
};

test("the summary names the outcome, the reason and each host", (t) => {
  t.is(
    renderDeploymentSummary(view),
    [
      "deploy geoip v2: rolled_back in 2.5s — 1 host(s) failed, more than max_failures=0",
      "HOST   OUTCOME  LIVE  RELEASE  SWITCH  ERROR",
      "web-1  failed   blue  v1       -       health (ERR_HEALTH_DEADLINE)",
      "web-2  skipped  -     -        -",
    ].join("\n"),
  );
});

test("--json ends with status, release and per-host name, outcome, liveColor, release, error", (t) => {
  const json = deploymentJson(view);
  t.is(json.status, "rolled_back");
  t.is(json.release, "v2");
  t.deepEqual(json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release, h.error]), [
    ["web-1", "failed", "blue", "v1", "health (ERR_HEALTH_DEADLINE)"],
    ["web-2", "skipped", null, null, null],
  ]);
});
