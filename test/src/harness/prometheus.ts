// A real Prometheus (Debian's `prometheus`) for one test: its own config,
// data dir and loopback port, scraping the targets the test names every second.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { tempDir, WAIT_MS, WatchedProcess } from "./processes.js";

export interface ScrapeJob {
  job: string;
  /** host:port of each target. */
  targets: string[];
  /** Path of the metrics; default /metrics. */
  path?: string;
  /** Sent as `Authorization: Bearer …` (the coordinator's /metrics needs a read token). */
  bearerToken?: string;
}

export interface PrometheusProcess {
  url: string;
  process: WatchedProcess;
  /** An instant query's result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
}

/** A free port on 127.0.0.1 (bound, then let go). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function configOf(jobs: ScrapeJob[]): string {
  const lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:"];
  for (const job of jobs) {
    lines.push(`  - job_name: ${JSON.stringify(job.job)}`, `    metrics_path: ${JSON.stringify(job.path ?? "/metrics")}`);
    if (job.bearerToken) lines.push("    authorization:", "      type: Bearer", `      credentials: ${JSON.stringify(job.bearerToken)}`);
    lines.push("    static_configs:", `      - targets: [${job.targets.map((t) => JSON.stringify(t)).join(", ")}]`);
  }
  return `${lines.join("\n")}\n`;
}

/** Starts Prometheus on 127.0.0.1 and resolves once it serves queries; stopped when the test ends. */
export async function startPrometheus(t: { teardown(fn: () => void | Promise<void>): void }, jobs: ScrapeJob[]): Promise<PrometheusProcess> {
  const dir = tempDir(t, "cutover-prometheus-");
  const config = join(dir, "prometheus.yml");
  writeFileSync(config, configOf(jobs));
  const port = await freePort();
  const child = spawn("prometheus", [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=info"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const process = new WatchedProcess(child, "prometheus");
  t.teardown(() => process.kill("SIGTERM"));
  await process.waitForLine(/Server is ready to receive web requests/, 0, WAIT_MS);
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    process,
    async query(promql) {
      const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await response.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== "success") throw new Error(`prometheus query ${promql} failed: ${body.error}`);
      return body.data.result;
    },
  };
}
