// A fleet deploy end to end: 20 real hosts (one cutover-agent each, with its own
// managed nginx on its own loopback address, running the sample app) and one
// front load-balancer host, behind one real coordinator, driven by the real CLI. After a first release, each
// measured deploy's time is split into the critical path of app boot + health
// gate (per batch, the slowest host's bootMs, summed over batches), the rest of
// the agents' work (fetch, spawn, nginx switch, confirm, bookkeeping), and the
// coordinator's own overhead (dispatch, store writes, batch sequencing).
//
//   npm run bench -- fleet [--hosts=20] [--repeats=3] [--mode=reload|live]
import { benchContext, conditions, fmt, option, table, writeResult } from "./_lib.mjs";

const { startCoordinator, startAgent } = await import("../test/dist/harness/fleet.js");
const { tempDir } = await import("../test/dist/harness/processes.js");
const { writeExampleSpec } = await import("../test/dist/harness/app-spec.js");
const { median } = await import("../packages/testkit/dist/index.js");

const LISTEN = 8080;
const LB_LISTEN = 8090;
const HEARTBEAT = "5s";

/**
 * A coordinator at the production heartbeat interval, `hosts` app hosts
 * (web-1..) on 127.A.B.11.. and one front load balancer (lb-1, role=lb, for
 * rolling) on 127.A.B.51, each an agent with its own nginx, all online. Like
 * the harness's startFleet, which runs its coordinator at a test interval.
 */
async function startBenchFleet(ctx, hosts, switchMode) {
  const coordinator = await startCoordinator(ctx, ["--heartbeat-interval", HEARTBEAT]);
  const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
  const addresses = Array.from({ length: hosts }, (_, i) => `${base}.${11 + i}`);
  const hostSpecs = [
    ...addresses.map((address, i) => ({ name: `web-${i + 1}`, address, labels: "role=geoip" })),
    { name: "lb-1", address: `${base}.51`, labels: "role=lb" },
  ];
  const agents = await Promise.all(hostSpecs.map(async (h) => startAgent(ctx, coordinator, { ...h, token: await coordinator.enrollmentToken(), switchMode })));
  await Promise.all(agents.map((a) => a.online()));
  return { coordinator, agents, addresses, dir: tempDir(ctx, "cutover-bench-fleet-") };
}

class Unavailable extends Error {}

/** Deploys `release` with the CLI (`--json`) and returns its JSON plus the wall time; Unavailable when the coordinator refuses the strategy. */
async function cliDeploy(fleet, spec, release, extra) {
  const started = performance.now();
  const result = await fleet.coordinator.cli(["deploy", spec, "--release", release, "--json", ...extra]);
  const wallMs = performance.now() - started;
  if (result.exitCode !== 0) {
    const text = `${result.stderr}${result.stdout}`.trim();
    if (/STRATEGY_UNSUPPORTED|not available yet/.test(text)) throw new Unavailable(text.split("\n")[0]);
    throw new Error(`deploy ${release} failed (exit ${result.exitCode}): ${text}`);
  }
  const summary = JSON.parse(result.stdout);
  // The API view adds each host's batch number, which the CLI's JSON leaves out.
  const response = await fetch(`${fleet.coordinator.url}/v1/deployments/${summary.id}`, { headers: { authorization: `Bearer ${fleet.coordinator.adminToken}` } });
  const view = await response.json();
  return { wallMs, summary, view, events: await deploymentEvents(fleet, summary.id) };
}

/** Every event of a finished deployment, from its event stream (which ends with `end`). */
async function deploymentEvents(fleet, id) {
  const response = await fetch(`${fleet.coordinator.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${fleet.coordinator.adminToken}` } });
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("event: progress"))
    .map((block) => JSON.parse(block.slice(block.indexOf("data: ") + 6)));
}

/**
 * The agent's steps on each host, from the times the coordinator received its
 * step events: what "everything else" is made of. Keyed by the step that ends
 * the interval; medians over hosts.
 */
const STEPS = [
  ["preflight", /^preflight for/],
  ["fetch+unpack", /^release .* unpacked/],
  ["start", /starting /],
  ["health", /^health gate for/],
  ["healthy", / is healthy (on \S+ )?after /],
  ["switch", /^nginx switched|^rolled back/],
  ["done", / live on /],
];
function stepDurations(events) {
  const byHost = new Map();
  for (const e of events) {
    if (!e.hostName || e.kind !== "step") continue;
    const step = STEPS.find(([, pattern]) => pattern.test(e.message))?.[0];
    if (!step) continue;
    if (!byHost.has(e.hostName)) byHost.set(e.hostName, {});
    byHost.get(e.hostName)[step] ??= e.at;
  }
  const blueGreen = [...byHost.values()].some((h) => h.health !== undefined);
  const spans = blueGreen
    ? {
        "preflight → fetched": ["preflight", "fetch+unpack"],
        "→ start (stop old warm color, port check)": ["fetch+unpack", "start"],
        "start → spawned": ["start", "health"],
        "health gate": ["health", "healthy"],
        "nginx switch": ["healthy", "switch"],
        "switch → done (save, prune)": ["switch", "done"],
      }
    : {
        "preflight → start (fetch, unpack)": ["preflight", "start"],
        "in place: stop old, spawn, health gate": ["start", "healthy"],
        "healthy → done": ["healthy", "done"],
      };
  const out = {};
  for (const [label, [from, to]] of Object.entries(spans)) {
    const values = [...byHost.values()].filter((h) => h[from] !== undefined && h[to] !== undefined).map((h) => h[to] - h[from]);
    if (values.length) out[label] = median(values);
  }
  return out;
}

/**
 * The strategies measured, each one function: `spec(dir)` writes its app spec
 * (first released once, unmeasured), `deploy(fleet, spec, release)` runs one
 * measured deploy through the CLI. The blue/green cases share an app.
 */
const CASES = [
  {
    label: "bluegreen, batch 100%",
    spec: (dir) => writeExampleSpec(dir, { listen: LISTEN, blue: 7001, green: 7002 }, "bluegreen.yml"),
    deploy: (fleet, spec, release) => cliDeploy(fleet, spec, release, ["--batch", "100%"]),
  },
  {
    label: "bluegreen, batch 5",
    spec: (dir) => writeExampleSpec(dir, { listen: LISTEN, blue: 7001, green: 7002 }, "bluegreen.yml"),
    deploy: (fleet, spec, release) => cliDeploy(fleet, spec, release, ["--batch", "5"]),
  },
  {
    // Rolling (docs/architecture.md, "Fleet strategies"): in place on one port; per batch the LB host drains the hosts, they restart on the new release, then go back in.
    label: "rolling, batch 5",
    spec: (dir) => writeExampleSpec(dir, { app: "geoip-rolling", listen: LISTEN + 1, blue: 7011, green: 7012, lbListen: LB_LISTEN, strategy: { type: "rolling" } }, "rolling.yml"),
    deploy: (fleet, spec, release) => cliDeploy(fleet, spec, release, ["--batch", "5"]),
  },
];

/** Splits one deployment's time: boot + health critical path, other agent work, coordinator overhead, CLI. */
function split({ wallMs, summary, view, events }) {
  const batches = new Map();
  for (const h of view.hosts) {
    if (!batches.has(h.batch)) batches.set(h.batch, []);
    batches.get(h.batch).push(h);
  }
  let bootPathMs = 0;
  let agentPathMs = 0;
  for (const hosts of batches.values()) {
    bootPathMs += Math.max(...hosts.map((h) => h.bootMs ?? 0));
    agentPathMs += Math.max(...hosts.map((h) => h.totalMs ?? 0));
  }
  const durationMs = summary.durationMs;
  return {
    status: summary.status,
    hosts: view.hosts.length,
    batches: batches.size,
    wallMs,
    durationMs,
    bootHealthPathMs: bootPathMs,
    everythingElseMs: durationMs - bootPathMs,
    agentOtherPathMs: agentPathMs - bootPathMs,
    coordinatorOverheadMs: durationMs - agentPathMs,
    cliOverheadMs: wallMs - durationMs,
    bootMsMedian: median(view.hosts.map((h) => h.bootMs)),
    bootMsMax: Math.max(...view.hosts.map((h) => h.bootMs)),
    switchMsMedian: median(view.hosts.map((h) => h.switchMs)),
    agentStepsMs: stepDurations(events),
  };
}

const medianOf = (runs, key) => median(runs.map((r) => r[key]));

export async function run(args) {
  const hosts = option(args, "hosts", 20);
  const repeats = option(args, "repeats", 3);
  const mode = args.find((a) => a.startsWith("--mode="))?.slice("--mode=".length) ?? "reload";
  console.log(`\n== fleet: blue/green deploys across ${hosts} real hosts (agent + managed nginx + sample app each), ${mode} mode, ${repeats} deploys per case`);
  const ctx = benchContext();
  const results = [];
  let release = 1;
  try {
    const fleet = await startBenchFleet(ctx, hosts, mode);
    const released = new Set();
    for (const c of CASES) {
      const runs = [];
      try {
        const spec = c.spec(fleet.dir);
        // The app's first release starts it everywhere (and puts the hosts into the LB's upstream): not what is measured.
        if (!released.has(spec)) await c.deploy(fleet, spec, `v${release++}`);
        released.add(spec);
        for (let i = 0; i < repeats; i++) runs.push(split(await c.deploy(fleet, spec, `v${release++}`)));
        results.push({ case: c.label, runs });
      } catch (error) {
        if (!(error instanceof Unavailable)) throw error;
        results.push({ case: c.label, unavailable: error.message });
      }
    }
  } finally {
    await ctx.close();
  }
  const measured = results.filter((r) => r.runs);
  console.log(
    table(
      ["case", "hosts", "batches", "deploys", "end-to-end ms (CLI)", "deployment ms", "boot+health path ms", "everything else ms", "agents' other work ms", "coordinator overhead ms", "CLI ms", "boot ms med/max", "switch ms med"],
      measured.map((r) => [
        r.case, r.runs[0].hosts, r.runs[0].batches, r.runs.length, fmt(medianOf(r.runs, "wallMs"), 0), fmt(medianOf(r.runs, "durationMs"), 0), fmt(medianOf(r.runs, "bootHealthPathMs"), 0),
        fmt(medianOf(r.runs, "everythingElseMs"), 0), fmt(medianOf(r.runs, "agentOtherPathMs"), 0), fmt(medianOf(r.runs, "coordinatorOverheadMs"), 0), fmt(medianOf(r.runs, "cliOverheadMs"), 0),
        `${fmt(medianOf(r.runs, "bootMsMedian"), 0)}/${fmt(medianOf(r.runs, "bootMsMax"), 0)}`, fmt(medianOf(r.runs, "switchMsMedian"), 0),
      ]),
    ),
  );
  console.log("agent steps per host, median ms (from the times the coordinator received each step event; the last deploy of each case):");
  for (const r of measured) console.log(`  ${r.case.padEnd(22)} ${Object.entries(r.runs.at(-1).agentStepsMs).map(([k, v]) => `${k} ${fmt(v, 0)}`).join(" | ")}`);
  for (const r of results.filter((x) => x.unavailable)) console.log(`${r.case}: not available — the coordinator refuses it: ${r.unavailable}`);
  console.log(
    "medians over the deploys of each case; deployment ms = created → finished in the coordinator's store; boot+health path = per batch the slowest host's\n" +
      "bootMs (start of the new instance → health gate passed), summed over batches; everything else = deployment − boot+health path, of which\n" +
      "agents' other work = per batch the slowest host's (totalMs − its boot), approximately, and coordinator overhead = deployment − Σ per batch max totalMs;\n" +
      "CLI = the CLI's own share of the end-to-end time (start-up, packing and checking the artifact, following the event stream).\n" +
      "For rolling, coordinator overhead also holds the LB host's work per batch (drain, wait for in-flight requests, back in) and the app's stop on each host.\n" +
      `health gate of the sample spec: every 100 ms, 2 passes in a row. All hosts share the machine's ${conditions().cores} cores, so 20 apps booting at once contend for CPU.`,
  );
  const budgets = [];
  for (const r of measured) {
    const failed = r.runs.filter((x) => x.status !== "succeeded").length;
    if (failed > 0) budgets.push(`MISS ${r.case}: ${failed} deploys did not succeed`);
    // The budgets (docs/architecture.md) cover a blue/green deploy; rolling's figures are shown without one.
    if (!r.case.startsWith("bluegreen")) continue;
    const overhead = medianOf(r.runs, "coordinatorOverheadMs");
    budgets.push(`${overhead < 1000 ? "ok  " : "MISS"} ${r.case}: coordinator overhead ${fmt(overhead, 0)} ms (budget < 1 s)`);
    const share = medianOf(r.runs, "bootHealthPathMs") / medianOf(r.runs, "durationMs");
    budgets.push(`${share >= 0.5 ? "ok  " : "MISS"} ${r.case}: app boot + health gate is ${fmt(100 * share, 0)}% of the deployment (budget: dominated by app boot, read as ≥ 50%)`);
  }
  console.log(budgets.join("\n"));
  writeResult("fleet", { conditions: conditions({ hosts, switchMode: mode, heartbeatInterval: HEARTBEAT, deploysPerCase: repeats, healthGate: "interval 100ms, 2 passes" }), results, budgets });
  return true;
}
