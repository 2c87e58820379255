import { createServer, type Server } from "node:http";
import type { Histogram, Registry } from "prom-client";
import { requestMetricFamilies, totalsFromWire, type cutover } from "@cutover/protocol";

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export interface MetricSources {
  instances(): cutover.v1.AppInstance.$Properties[];
  connected(): boolean;
  /** The request counters of this host's nginx sites (what heartbeats carry). */
  requests(): Promise<cutover.v1.RequestCounters.$Properties[]>;
}

/** The one method of the command-duration histogram the agent calls. */
export interface DurationObserver {
  observe(labels: { operation: string; status: string }, seconds: number): void;
}

/**
 * The agent's own Prometheus metrics, served only when --metrics-listen is given. Until
 * listen() nothing is loaded or kept: prom-client and its default collectors (an event-loop
 * delay timer, a GC observer) cost an idle agent megabytes and CPU that nobody scrapes.
 */
export class AgentMetrics {
  private histogram: Histogram<"operation" | "status"> | null = null;
  /** A no-op until listen(): a command's duration is kept only where it can be scraped. */
  readonly commandDuration: DurationObserver = { observe: (labels, seconds) => this.histogram?.observe(labels, seconds) };

  constructor(private readonly sources: MetricSources) {}

  private async createRegistry(): Promise<Registry> {
    const { Gauge, Histogram, Registry, collectDefaultMetrics } = await import("prom-client");
    const registry = new Registry();
    const sources = this.sources;
    collectDefaultMetrics({ register: registry, prefix: "cutover_agent_" });
    new Gauge({
      name: "cutover_agent_instances",
      help: "App instances this agent manages, by app, color and state (live=1 when nginx sends it traffic).",
      labelNames: ["app", "color", "state", "live"],
      registers: [registry],
      collect() {
        this.reset();
        for (const i of sources.instances()) this.inc({ app: i.app ?? "", color: i.color ?? "", state: i.state ?? "", live: i.live ? "1" : "0" });
      },
    });
    new Gauge({
      name: "cutover_agent_coordinator_connected",
      help: "1 while the session with the coordinator is online.",
      registers: [registry],
      collect() {
        this.set(sources.connected() ? 1 : 0);
      },
    });
    const requests = async () => (await sources.requests()).map((c) => ({ labels: { app: c.app ?? "", site: c.site ?? "", group: c.group ?? "" }, totals: totalsFromWire(c) }));
    for (const family of requestMetricFamilies(requests)) registry.registerMetric(family as never);
    this.histogram = new Histogram({
      name: "cutover_agent_command_duration_seconds",
      help: "Time the agent spent on each command, by operation and outcome.",
      labelNames: ["operation", "status"],
      buckets: SECONDS_BUCKETS,
      registers: [registry],
    });
    return registry;
  }

  /** Serves GET /metrics on host:port (keep it on loopback or a management network). */
  async listen(host: string, port: number): Promise<Server> {
    const registry = await this.createRegistry();
    const server = createServer((request, response) => {
      if (request.url !== "/metrics") {
        response.writeHead(404).end();
        return;
      }
      void registry.metrics().then((text) => response.writeHead(200, { "content-type": registry.contentType }).end(text));
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
