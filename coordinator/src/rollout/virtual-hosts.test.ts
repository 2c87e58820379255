// Who may get a spec with names or TLS: an agent that would ignore them must not.
import test from "ava";
import { SERVES_VIRTUAL_HOSTS } from "@cutover/protocol";
import { parseSpec } from "@cutover/spec";
import type { HostRecord } from "../store/hosts.js";
import { virtualHostsUnsupported } from "./virtual-hosts.js";

const spec = (proxy: string, lb = "") =>
  parseSpec(`app: geoip\nrun: { command: [node, server.js] }\nports: { blue: 7001, green: 7002 }\nproxy: ${proxy}\nhealth: { tcp: {} }\nhosts: { role: geoip }\n${lb}`, { file: "app.yml", exists: () => null });
const host = (name: string, role: string, capabilities: string[] = [SERVES_VIRTUAL_HOSTS], agentVersion = "0.2.0") =>
  ({ id: `id-${name}`, name, labels: { role }, capabilities, agentVersion }) as unknown as HostRecord;

test("a plain spec goes to any agent", (t) => {
  t.is(virtualHostsUnsupported(spec("{ listen: 80 }"), [host("web-1", "geoip", [])], []), undefined);
});

test("names on the proxy are refused for an app host whose agent lacks the capability, naming it", (t) => {
  const hosts = [host("web-1", "geoip"), host("web-2", "geoip", [], "0.1.0")];
  t.is(
    virtualHostsUnsupported(spec("{ listen: 80, server_names: [geo.example.com] }"), hosts, hosts),
    'the spec has server_names, tls, redirect_http or http2, which the agents of web-2 (agent 0.1.0) cannot serve (no "proxy.virtual-hosts" capability): upgrade those agents first (`cutover agents upgrade`)',
  );
});

test("TLS on the lb is judged on the LB hosts, not the app hosts", (t) => {
  const lb = "lb: { hosts: { role: lb }, listen: 443, tls: { certificate: /c.pem, key: /k.pem } }\nstrategy: { type: rolling }\n";
  const apps = [host("web-1", "geoip", [])];
  t.is(virtualHostsUnsupported(spec("{ listen: 80 }", lb), apps, [...apps, host("lb-1", "lb")]), undefined);
  t.regex(virtualHostsUnsupported(spec("{ listen: 80 }", lb), apps, [...apps, host("lb-1", "lb", [])]) ?? "", /agents of lb-1/);
});
