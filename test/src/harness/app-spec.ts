import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { repoRoot } from "./processes.js";

export const EXAMPLE_APP_DIR = join(repoRoot, "examples", "app");

export interface ExampleSpecOptions {
  app?: string;
  listen: number;
  blue: number;
  green: number;
  /** Extra arguments for the sample app (e.g. ["--fail-health"]). */
  appArgs?: string[];
  selector?: Record<string, string>;
  batch?: number | string;
  maxFailures?: number;
  keepPrevious?: string;
  deadline?: string;
  directives?: string[];
  minFreeMemory?: string;
  /** Front load balancers (hosts labelled role=lb) listening on this port. */
  lbListen?: number;
  /** Strategy fields beyond batch/max_failures (type, canary, groups, steps, ...); keep_previous is dropped for rolling. */
  strategy?: Record<string, unknown>;
  /** run.user; default APP_USER. null leaves it out: the app would run as the agent's user (root), which agents refuse unless --allow-root-apps. */
  user?: string | null;
}

/** The account test apps run as: what an operator should do, and what an agent without --allow-root-apps needs. */
export const APP_USER = "nobody";

/** Writes an app spec for the sample app (examples/app) into `dir` and returns its path. */
export function writeExampleSpec(dir: string, options: ExampleSpecOptions, file = "app.yml"): string {
  const spec = {
    app: options.app ?? "geoip",
    artifact: EXAMPLE_APP_DIR,
    run: {
      command: ["node", "server.mjs", "--port", "${PORT}", "--host", "${ADDRESS}", ...(options.appArgs ?? [])],
      ...(options.user !== null && { user: options.user ?? APP_USER }),
      stop_timeout: "5s",
    },
    ports: { blue: options.blue, green: options.green },
    proxy: { listen: options.listen, protocol: "http", ...(options.directives && { directives: options.directives }) },
    health: { http: { path: "/health_check", expect_status: 200 }, interval: "100ms", timeout: "1s", healthy_threshold: 2, deadline: options.deadline ?? "15s" },
    hosts: options.selector ?? { role: "geoip" },
    ...(options.lbListen !== undefined && { lb: { hosts: { role: "lb" }, listen: options.lbListen, drain_timeout: "10s" } }),
    strategy: {
      type: "bluegreen",
      batch: options.batch ?? 1,
      max_failures: options.maxFailures ?? 0,
      ...(options.strategy?.type !== "rolling" && { keep_previous: options.keepPrevious ?? "10m" }),
      ...options.strategy,
    },
    ...(options.minFreeMemory && { resources: { min_free_memory: options.minFreeMemory } }),
  };
  const path = join(dir, file);
  writeFileSync(path, stringify(spec));
  return path;
}
