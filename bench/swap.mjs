// Per-host swap cost and zero-downtime check, in both switch modes.
// One real host (agent + its own nginx + the sample app), N consecutive
// blue/green deploys through the real CLI and coordinator while two clients
// load the host's proxy: one retrying idempotent requests on a closed
// keep-alive connection (RFC 9112 §9.3.1), one that never retries.
//
//   npm run bench -- swap [--swaps=50] [--mode=reload|live] [--entry=dist|bundle] [--node-flags=A,B]
//
// The agent runs from agent/dist by default; --entry=bundle runs the one-file bundle with
// install.sh's node flags (or --node-flags), as installed.
import { agentEntry, entryArgs } from "./_agent-entry.mjs";
import { benchContext, conditions, fmt, option, table, writeResult } from "./_lib.mjs";

const { startFleet } = await import("../test/dist/harness/fleet.js");
const { tempDir } = await import("../test/dist/harness/processes.js");
const { writeExampleSpec } = await import("../test/dist/harness/app-spec.js");
const { startLoad, quantile, median } = await import("../packages/testkit/dist/index.js");

const LISTEN = 8080;
const CONCURRENCY = 2;

async function runMode(mode, swaps, entryOptions) {
  const ctx = benchContext();
  try {
    const entry = await agentEntry(entryOptions.entryName, tempDir(ctx, "cutover-bench-bundle-"), entryOptions.flags, entryOptions.niceness);
    console.log(`${mode}: agent ${entry.label}`);
    const fleet = await startFleet(ctx, { hosts: 1, switchMode: mode, agent: entry.options });
    const spec = writeExampleSpec(fleet.dir, { listen: LISTEN, blue: 7001, green: 7002 });
    const deploy = async (release) => {
      const result = await fleet.coordinator.cli(["deploy", spec, "--release", release, "--json"]);
      if (result.exitCode !== 0) throw new Error(`deploy ${release} failed: ${result.stdout}${result.stderr}`);
      return JSON.parse(result.stdout).hosts[0];
    };
    await deploy("r0");
    const classify = (status, headers) => (status === 200 ? String(headers["x-app-version"]) : null);
    const base = { address: fleet.addresses[0], port: LISTEN, path: "/api/v1/geoip/1.2.3.4", concurrency: CONCURRENCY, ratePerSec: "unbounded", maxRequests: 10_000_000, classify };
    // Steady state first: the same clients, no deploy running.
    const steadyRetry = startLoad({ ...base, retry: true });
    const steadyPlain = startLoad({ ...base, retry: false });
    await Promise.all([steadyRetry.completed(1000), steadyPlain.completed(1000)]);
    const steady = [await steadyRetry.stop(), await steadyPlain.stop()];

    const retrying = startLoad({ ...base, retry: true });
    const plain = startLoad({ ...base, retry: false });
    const hosts = [];
    for (let i = 1; i <= swaps; i++) hosts.push(await deploy(`r${i}`));
    const [retryReport, plainReport] = [await retrying.stop(), await plain.stop()];
    const switchMs = hosts.map((h) => h.switchMs);
    const switchWorkMs = hosts.map((h) => h.switchMs - (h.handoverMs ?? 0));
    const agentMs = hosts.map((h) => h.totalMs - h.bootMs);
    const bootMs = hosts.map((h) => h.bootMs);
    const steadyLatencies = steady.flatMap((r) => r.latenciesMs);
    const swapLatencies = [...retryReport.latenciesMs, ...plainReport.latenciesMs];
    return {
      mode,
      agent: entry.label,
      swaps,
      switchMs: { median: median(switchMs), p99: quantile(switchMs, 0.99) },
      switchWithoutHandoverMs: { median: median(switchWorkMs), p99: quantile(switchWorkMs, 0.99) },
      agentWorkMs: { median: median(agentMs), p99: quantile(agentMs, 0.99) },
      bootAndHealthMs: { median: median(bootMs) },
      retrying: { requests: retryReport.requests, failed: retryReport.failed, socketErrors: retryReport.socketErrors, retries: retryReport.retries, failures: retryReport.failures.slice(0, 5) },
      nonRetrying: { requests: plainReport.requests, failed: plainReport.failed, socketErrors: plainReport.socketErrors, failures: plainReport.failures.slice(0, 5) },
      latencyMs: { steadyP99: quantile(steadyLatencies, 0.99), duringSwapsP99: quantile(swapLatencies, 0.99), steadyMedian: median(steadyLatencies), duringSwapsMedian: median(swapLatencies) },
    };
  } finally {
    await ctx.close();
  }
}

export async function run(args) {
  const swaps = option(args, "swaps", 50);
  console.log(`\n== swap: ${swaps} consecutive per-host blue/green deploys per mode, 1 host, 2+2 keep-alive clients on its proxy`);
  const results = [];
  const entryOptions = entryArgs(args, "dist");
  const only = args.find((a) => a.startsWith("--mode="))?.slice("--mode=".length);
  if (only !== undefined && only !== "reload" && only !== "live") throw new Error(`--mode=${only}: reload or live`);
  for (const mode of only ? [only] : ["reload", "live"]) results.push(await runMode(mode, swaps, entryOptions));
  console.log(
    table(
      ["mode", "swaps", "switch ms med", "switch ms p99", "w/o handover med", "p99", "agent work ms med", "p99", "boot+health ms", "requests (retry)", "failed", "sock err", "requests (no retry)", "failed", "sock err", "p99 ms steady", "p99 ms swapping"],
      results.map((r) => [
        r.mode, r.swaps, fmt(r.switchMs.median), fmt(r.switchMs.p99), fmt(r.switchWithoutHandoverMs.median), fmt(r.switchWithoutHandoverMs.p99), fmt(r.agentWorkMs.median), fmt(r.agentWorkMs.p99), fmt(r.bootAndHealthMs.median, 0),
        r.retrying.requests, r.retrying.failed, r.retrying.socketErrors, r.nonRetrying.requests, r.nonRetrying.failed, r.nonRetrying.socketErrors,
        fmt(r.latencyMs.steadyP99), fmt(r.latencyMs.duringSwapsP99),
      ]),
    ),
  );
  console.log(
    "switch = the nginx switch itself (render/nginx -t/reload/confirm, or live set/confirm); in reload mode it includes waiting out\n" +
      "nginx's ~100 ms old-worker handover (nginx keeps old workers accepting for 100 ms after a reload), shown apart as 'w/o handover';\n" +
      "agent work = the agent's whole Deploy minus the app's boot and health gate (preflight, fetch, stop of the old warm color, spawn, switch, bookkeeping).",
  );
  const budgets = [];
  for (const r of results) {
    const budget = r.mode === "live" ? 5 : 50;
    if (r.switchWithoutHandoverMs.median > budget) budgets.push(`MISS ${r.mode}: switch median ${fmt(r.switchWithoutHandoverMs.median)} ms (without nginx's handover) > ${budget} ms budget (docs/architecture.md, Budgets)`);
    if (r.retrying.failed > 0) budgets.push(`MISS ${r.mode}: ${r.retrying.failed} failed requests for the retrying client`);
    if (r.mode === "live" && r.nonRetrying.socketErrors > 0) budgets.push(`MISS live: ${r.nonRetrying.socketErrors} socket errors for the non-retrying client`);
  }
  console.log(budgets.length ? budgets.join("\n") : "within the budgets (docs/architecture.md, Budgets)");
  writeResult("swap", { conditions: conditions({ hosts: 1, clients: "2 retrying + 2 non-retrying keep-alive", swapsPerMode: swaps, agent: results[0].agent }), results, budgets });
  return true;
}
