import { createServer, type Server } from "node:http";
import { Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { cutover } from "@cutover/protocol";

const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** The agent's own Prometheus metrics, served only when --metrics-listen is given. */
export class AgentMetrics {
  readonly registry = new Registry();
  readonly commandDuration: Histogram<"operation" | "status">;

  constructor(sources: { instances(): cutover.v1.AppInstance.$Properties[]; connected(): boolean }) {
    collectDefaultMetrics({ register: this.registry, prefix: "cutover_agent_" });
    new Gauge({
      name: "cutover_agent_instances",
      help: "App instances this agent manages, by app, color and state (live=1 when nginx sends it traffic).",
      labelNames: ["app", "color", "state", "live"],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const i of sources.instances()) this.inc({ app: i.app ?? "", color: i.color ?? "", state: i.state ?? "", live: i.live ? "1" : "0" });
      },
    });
    new Gauge({
      name: "cutover_agent_coordinator_connected",
      help: "1 while the session with the coordinator is online.",
      registers: [this.registry],
      collect() {
        this.set(sources.connected() ? 1 : 0);
      },
    });
    this.commandDuration = new Histogram({
      name: "cutover_agent_command_duration_seconds",
      help: "Time the agent spent on each command, by operation and outcome.",
      labelNames: ["operation", "status"],
      buckets: SECONDS_BUCKETS,
      registers: [this.registry],
    });
  }

  /** Serves GET /metrics on host:port (keep it on loopback or a management network). */
  listen(host: string, port: number): Promise<Server> {
    const server = createServer((request, response) => {
      if (request.url !== "/metrics") {
        response.writeHead(404).end();
        return;
      }
      void this.registry.metrics().then((text) => response.writeHead(200, { "content-type": this.registry.contentType }).end(text));
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve(server));
    });
  }
}
