import test from "ava";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { freePort } from "@cutover/testkit";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startAgent, startCoordinator } from "./harness/fleet.js";
import { tempDir } from "./harness/processes.js";
import { getThroughProxy } from "./harness/through-proxy.js";

interface Family {
  name: string;
  type: string;
  metrics: { labels?: Record<string, string>; value?: string; count?: string; buckets?: Record<string, string> }[];
}

type Scrape = Map<string, Family> & { text: string };

/** Fetches and parses (the parser throws on any malformed line). */
async function scrape(url: string, token?: string): Promise<Scrape> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  const text = await response.text();
  const families = parsePrometheusTextFormat(text) as Family[];
  return Object.assign(new Map(families.map((f) => [f.name, f])), { text });
}

/**
 * A labelled histogram's observation count. The parser folds a histogram's
 * label sets together, so this reads the `_count` sample of the parsed text.
 */
function histogramCount(scraped: Scrape, name: string, labels: Record<string, string>): number {
  for (const line of scraped.text.split("\n")) {
    if (!line.startsWith(`${name}_count{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.split(" ").at(-1));
  }
  return 0;
}

function value(families: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = families.get(name);
  const metric = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return Number(metric?.value ?? metric?.count ?? 0);
}

test.serial("the coordinator's and the agent's metrics parse as Prometheus text and their counters move during a deploy", async (t) => {
  const coordinator = await startCoordinator(t, ["--heartbeat-interval", "1s"]);
  const address = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}.11`;
  const metricsPort = await freePort(address);
  const agent = await startAgent(t, coordinator, { name: "web-1", address, labels: "role=geoip", token: await coordinator.enrollmentToken(), extraArgs: ["--metrics-listen", `${address}:${metricsPort}`] });
  await agent.online();

  const noToken = await fetch(`${coordinator.url}/metrics`);
  t.is(noToken.status, 401, "the coordinator's metrics need a read token");
  const before = await scrape(`${coordinator.url}/metrics`, coordinator.adminToken);
  t.is(value(before, "cutover_hosts", { state: "online" }), 1);
  t.is(value(before, "cutover_agent_sessions"), 1);
  t.is(value(before, "cutover_deployments_total", { outcome: "succeeded" }), 0);
  t.is(before.get("cutover_deployments_total")?.type, "COUNTER");
  t.is(before.get("cutover_command_duration_seconds")?.type, "HISTOGRAM");

  const spec = writeExampleSpec(tempDir(t), { listen: 8080, blue: 7001, green: 7002 });
  for (const release of ["v1", "v2"]) {
    const result = await coordinator.cli(["deploy", spec, "--release", release, "--json"]);
    t.is(result.exitCode, 0, result.stderr);
  }
  const after = await scrape(`${coordinator.url}/metrics`, coordinator.adminToken);
  t.is(value(after, "cutover_deployments_total", { strategy: "bluegreen", kind: "deploy", outcome: "succeeded" }), 2);
  t.is(histogramCount(after, "cutover_command_duration_seconds", { operation: "deploy", status: "OK" }), 2);
  t.is(histogramCount(after, "cutover_host_step_duration_seconds", { step: "switch" }), 2);
  t.true(Number(after.get("cutover_coordinator_process_resident_memory_bytes")?.metrics[0]?.value) > 0);

  for (let i = 0; i < 5; i++) t.is((await getThroughProxy(address, 8080)).status, 200);
  const agentMetrics = await scrape(`http://${address}:${metricsPort}/metrics`);
  // The host's proxy counted them (and the switch's confirming request) under the live color.
  t.true(value(agentMetrics, "cutover_requests_total", { app: "geoip", site: "app", group: "green", code: "2xx" }) >= 5, agentMetrics.text);
  t.is(agentMetrics.get("cutover_request_duration_seconds")?.type, "HISTOGRAM");
  t.true(histogramCount(agentMetrics, "cutover_request_duration_seconds", { site: "app", group: "green" }) >= 5);
  t.is(value(agentMetrics, "cutover_agent_coordinator_connected"), 1);
  t.is(value(agentMetrics, "cutover_agent_instances", { app: "geoip", color: "green", live: "1" }), 1);
  t.is(histogramCount(agentMetrics, "cutover_agent_command_duration_seconds", { operation: "deploy", status: "OK" }), 2);
});
