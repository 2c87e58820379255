import { requestMetricFamilies } from "@cutover/protocol";
import type { Registry } from "prom-client";
import type { CounterReading } from "../fleet/request-metrics.js";

/** Registers the request counters the agents report, labelled app, host (the reporting agent), site and group. */
export function registerRequestSeries(registry: Registry, counters: () => CounterReading[]): void {
  const labelled = () => counters().map((c) => ({ labels: { app: c.app, host: c.host, site: c.site, group: c.group }, totals: c.totals }));
  for (const family of requestMetricFamilies(labelled)) registry.registerMetric(family as never);
}
