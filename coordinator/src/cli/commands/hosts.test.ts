import test from "ava";
import type { HostView } from "../../api/hosts-view.js";
import { EXIT, exitCodeForRefusal } from "../exit-error.js";
import { renderCordon, renderHosts } from "./hosts.js";

const NOW = Date.parse("2026-12-02T12:00:00Z");

function view(name: string, cordoned: HostView["cordoned"], extra: Partial<HostView> = {}): HostView {
  return {
    id: name, name, address: "10.0.0.1", hostname: name, labels: { role: "geoip" }, pendingLabels: null, pendingAddress: null, state: "online",
    heartbeatOverdueMs: 0, lastSeen: new Date(NOW).toISOString(), agentVersion: "0.1.0", capabilities: [], resources: null, instances: [], cordoned, ...extra,
  };
}

test("hosts: the CORDONED column says who, how long ago and why; `-` for the others", (t) => {
  const table = renderHosts([view("web-1", null), view("web-2", { by: "ops", reason: "disk swap", at: new Date(NOW - 120_000).toISOString() })], NOW).split("\n");
  t.regex(table[0]!, /PENDING\s+CORDONED$/);
  t.regex(table[1]!, /^web-1 .* -\s+-$/);
  t.regex(table[2]!, /^web-2 .* by ops 2m ago: disk swap$/);
});

test("cordon / uncordon output: one line per app load balancer, what it did; an uncordon still cordoned says to run it again", (t) => {
  const cordoned = { by: "ops", reason: "", at: new Date(NOW).toISOString() };
  t.is(
    renderCordon({ host: view("web-2", cordoned), loadBalancers: [{ app: "geoip", lbHost: "lb-1", ok: true, drained: true }, { app: "api", lbHost: "lb-1", ok: true, drained: false }] }, "cordon"),
    [
      "web-2 cordoned by ops: deploys leave it out, load balancers send it no new requests",
      "  geoip at lb-1: drained",
      "  api at lb-1: drained (in-flight requests still running at lb.drain_timeout)",
    ].join("\n"),
  );
  t.is(
    renderCordon({ host: view("web-2", cordoned), loadBalancers: [{ app: "geoip", lbHost: "lb-1", ok: false, error: "host lb-1 is unreachable" }] }, "uncordon"),
    ["web-2 is still cordoned: not every load balancer took it back (run `cutover hosts uncordon web-2` again)", "  geoip at lb-1: FAILED: host lb-1 is unreachable"].join("\n"),
  );
  t.is(renderCordon({ host: view("web-2", null), loadBalancers: [] }, "uncordon"), ["web-2 uncordoned: deploys reach it again, load balancers send it requests", "  (it is behind no load balancer)"].join("\n"));
});

test("lifecycle refusals exit by kind: a host to clean unreachable or an app being removed is 75 (try later), the last backend or nothing to uncordon 65", (t) => {
  t.is(exitCodeForRefusal(409, "ERR_HOSTS_UNREACHABLE"), EXIT.tryLater);
  t.is(exitCodeForRefusal(409, "ERR_APP_REMOVING"), EXIT.tryLater);
  t.is(exitCodeForRefusal(409, "ERR_DEPLOYMENT_IN_PROGRESS"), EXIT.tryLater);
  t.is(exitCodeForRefusal(409, "ERR_LAST_BACKEND"), EXIT.refused);
  t.is(exitCodeForRefusal(409, "ERR_NOT_CORDONED"), EXIT.refused);
  t.is(exitCodeForRefusal(412, "ERR_AGENT_UNSUPPORTED"), EXIT.refused);
});
