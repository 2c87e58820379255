import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CounterReading } from "../fleet/request-metrics.js";
import { registerRequestSeries } from "./request-series.js";

/** Seconds buckets for agent steps and command round trips: 1 ms … 2 min. */
const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The coordinator's Prometheus metrics (GET /metrics with a read token).
 * Names follow Prometheus conventions: cutover_ prefix, base units, _total counters.
 */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly hosts: Gauge<"state">;
  readonly agentSessions: Gauge;
  readonly deployments: Counter<"strategy" | "kind" | "outcome">;
  readonly stepDuration: Histogram<"step">;
  readonly commandDuration: Histogram<"operation" | "status">;

  constructor(sources: { hostStates(): Record<string, number>; sessions(): number; requests(): CounterReading[] }) {
    collectDefaultMetrics({ register: this.registry, prefix: "cutover_coordinator_" });
    registerRequestSeries(this.registry, sources.requests);
    this.hosts = new Gauge({
      name: "cutover_hosts",
      help: "Enrolled hosts by liveness state.",
      labelNames: ["state"],
      registers: [this.registry],
      collect() {
        for (const [state, count] of Object.entries(sources.hostStates())) this.set({ state }, count);
      },
    });
    this.agentSessions = new Gauge({
      name: "cutover_agent_sessions",
      help: "Authenticated agent WebSocket sessions.",
      registers: [this.registry],
      collect() {
        this.set(sources.sessions());
      },
    });
    this.deployments = new Counter({
      name: "cutover_deployments_total",
      help: "Deployments and rollbacks that finished, by strategy, kind and outcome.",
      labelNames: ["strategy", "kind", "outcome"],
      registers: [this.registry],
    });
    this.stepDuration = new Histogram({
      name: "cutover_host_step_duration_seconds",
      help: "Per-host deploy steps as agents report them: switch (nginx), boot (start to health gate passed), total.",
      labelNames: ["step"],
      buckets: SECONDS_BUCKETS,
      registers: [this.registry],
    });
    this.commandDuration = new Histogram({
      name: "cutover_command_duration_seconds",
      help: "Round trip of commands sent to agents, by operation and outcome.",
      labelNames: ["operation", "status"],
      buckets: SECONDS_BUCKETS,
      registers: [this.registry],
    });
  }
}
