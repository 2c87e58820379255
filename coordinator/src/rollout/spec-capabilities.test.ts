// Who may get a spec with secrets, names or TLS: an agent that would ignore them must not.
import test from "ava";
import { SERVES_VIRTUAL_HOSTS, TAKES_SECRETS } from "@cutover/protocol";
import { parseSpec } from "@cutover/spec";
import type { HostRecord } from "../store/hosts.js";
import { unsupportedFeatures } from "./spec-capabilities.js";

const spec = (proxy: string, rest = "") =>
  parseSpec(`app: geoip\nrun: { command: [node, server.js] }\nports: { blue: 7001, green: 7002 }\nproxy: ${proxy}\nhealth: { tcp: {} }\nhosts: { role: geoip }\n${rest}`, { file: "app.yml", exists: () => null });
const NEW = [SERVES_VIRTUAL_HOSTS, TAKES_SECRETS];
const host = (name: string, role: string, capabilities: string[] = NEW, agentVersion = "0.2.0") =>
  ({ id: `id-${name}`, name, labels: { role }, capabilities, agentVersion }) as unknown as HostRecord;

test("a plain spec goes to any agent", (t) => {
  t.is(unsupportedFeatures(spec("{ listen: 80 }"), [host("web-1", "geoip", [])], []), undefined);
});

test("names on the proxy are refused for an app host whose agent lacks the capability, naming it", (t) => {
  const hosts = [host("web-1", "geoip"), host("web-2", "geoip", [TAKES_SECRETS], "0.1.0")];
  t.is(
    unsupportedFeatures(spec("{ listen: 80, server_names: [geo.example.com] }"), hosts, hosts),
    'the spec has proxy server_names, tls, redirect_http or http2, which the agents of web-2 (agent 0.1.0) cannot carry out (no "proxy.virtual-hosts" capability): upgrade those agents first (`cutover agents upgrade`)',
  );
});

test("secrets and env_file are refused for an agent that would start the app without them", (t) => {
  const old = [host("web-1", "geoip", [SERVES_VIRTUAL_HOSTS], "0.0.9")];
  t.is(unsupportedFeatures(spec("{ listen: 80 }"), old, old), undefined, "a spec without them goes to that agent");
  const withSecret = parseSpec("app: geoip\nrun: { command: [node, s.js], env: { DB: { secret: DB } } }\nports: { blue: 7001, green: 7002 }\nproxy: { listen: 80 }\nhealth: { tcp: {} }\nhosts: { role: geoip }\n", { file: "app.yml", exists: () => null });
  t.regex(unsupportedFeatures(withSecret, old, old) ?? "", /the spec has secrets or run\.env_file, which the agents of web-1 \(agent 0\.0\.9\) cannot carry out \(no "run\.secrets" capability\)/);
});

test("TLS on the lb is judged on the LB hosts, not the app hosts", (t) => {
  const lb = "lb: { hosts: { role: lb }, listen: 443, tls: { certificate: /c.pem, key: /k.pem } }\nstrategy: { type: rolling }\n";
  const apps = [host("web-1", "geoip", [])];
  t.is(unsupportedFeatures(spec("{ listen: 80 }", lb), apps, [...apps, host("lb-1", "lb")]), undefined);
  t.regex(unsupportedFeatures(spec("{ listen: 80 }", lb), apps, [...apps, host("lb-1", "lb", [])]) ?? "", /agents of lb-1/);
});
