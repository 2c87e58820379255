// Idle footprint: one real agent (with its managed nginx) managing 3 apps (the
// sample app under three names), sampled for 60 s: the agent process alone,
// then the app processes and nginx apart; and the coordinator's idle RSS with
// three agents connected. Heartbeats at the production interval (5 s).
//
// The agent runs as installed (--entry=bundle, the default): the one-file bundle
// scripts/bundle-agent.mjs makes, built afresh from agent/dist into a temp dir, with the
// node flags of install.sh's wrapper. --entry=dist runs agent/dist as the tests do;
// --node-flags=A,B measures the bundle under other flags than install.sh's.
//
//   npm run bench -- footprint [--seconds=60] [--mode=auto|reload|live] [--entry=bundle|dist] [--node-flags=--lite-mode,...]
import { agentEntry, entryArgs } from "./_agent-entry.mjs";
import { benchContext, conditions, fmt, option, table, writeResult } from "./_lib.mjs";
import { MiB, processTree, sampleGroups, sleep } from "./_proc.mjs";

const { startCoordinator, startAgent } = await import("../test/dist/harness/fleet.js");
const { tempDir } = await import("../test/dist/harness/processes.js");
const { writeExampleSpec } = await import("../test/dist/harness/app-spec.js");
const { hostProcesses } = await import("../test/dist/harness/host-processes.js");

const APPS = [
  { app: "geo-a", listen: 8081, blue: 7001, green: 7002 },
  { app: "geo-b", listen: 8082, blue: 7011, green: 7012 },
  { app: "geo-c", listen: 8083, blue: 7021, green: 7022 },
];
const OTHER_AGENTS = 2;
/** After the deploys, time for the agent to finish what they set going (confirm, heartbeats, GC). */
const SETTLE_MS = 10_000;
const BUDGET = { agentRssBytes: 60 * MiB, agentCpuPercent: 1 };

export async function run(args) {
  const seconds = option(args, "seconds", 60);
  const mode = args.find((a) => a.startsWith("--mode="))?.slice("--mode=".length) ?? "auto";
  const { entryName, flags } = entryArgs(args, "bundle");
  console.log(`\n== footprint: one agent managing ${APPS.length} apps, sampled ${seconds} s idle; coordinator with ${1 + OTHER_AGENTS} agents connected (heartbeat 5s, nginx switch ${mode})`);
  const ctx = benchContext();
  let sampled;
  let capabilities;
  let entry;
  try {
    entry = await agentEntry(entryName, tempDir(ctx, "cutover-bench-bundle-"), flags);
    console.log(`measured agent: ${entry.label}`);
    const coordinator = await startCoordinator(ctx, ["--heartbeat-interval", "5s"]);
    const base = `127.${1 + Math.floor(Math.random() * 254)}.${1 + Math.floor(Math.random() * 254)}`;
    const tokens = await Promise.all(Array.from({ length: 1 + OTHER_AGENTS }, () => coordinator.enrollmentToken()));
    const agents = [];
    for (const [i, token] of tokens.entries()) {
      agents.push(await startAgent(ctx, coordinator, { name: `web-${i + 1}`, address: `${base}.${11 + i}`, labels: i === 0 ? "role=geoip" : "role=idle", token, switchMode: mode, ...(i === 0 ? entry.options : {}) }));
    }
    await Promise.all(agents.map((a) => a.online()));
    const dir = tempDir(ctx, "cutover-bench-footprint-");
    for (const spec of APPS) {
      const path = writeExampleSpec(dir, spec, `${spec.app}.yml`);
      const result = await coordinator.cli(["deploy", path, "--release", "v1", "--json"]);
      if (result.exitCode !== 0) throw new Error(`deploy ${spec.app} failed: ${result.stdout}${result.stderr}`);
    }
    const agent = agents[0];
    const hosts = await (await fetch(`${coordinator.url}/v1/hosts`, { headers: { authorization: `Bearer ${coordinator.adminToken}` } })).json();
    capabilities = hosts.find((h) => h.name === "web-1")?.capabilities ?? [];
    await sleep(SETTLE_MS);
    const stateDir = agent.options.stateDir;
    const instances = () => hostProcesses(stateDir).filter((p) => p.kind === "instance").flatMap((p) => processTree(p.pid));
    const nginx = () => hostProcesses(stateDir).filter((p) => p.kind === "nginx").flatMap((p) => processTree(p.pid));
    sampled = await sampleGroups(
      {
        agent: () => [agent.process.pid],
        apps: instances,
        nginx,
        coordinator: () => [coordinator.process.pid],
      },
      seconds * 1000,
    );
  } finally {
    await ctx.close();
  }
  const rows = [
    ["agent (web-1, 3 apps)", sampled.agent],
    [`app instances (${APPS.length} apps)`, sampled.apps],
    ["nginx of web-1 (master + workers)", sampled.nginx],
    [`coordinator (${1 + OTHER_AGENTS} agents)`, sampled.coordinator],
  ];
  console.log(
    table(
      ["process", "processes", "RSS mean MB", "RSS max MB", "CPU % of a core"],
      rows.map(([label, s]) => [label, s.processes, fmt(s.rssMeanBytes / MiB), fmt(s.rssMaxBytes / MiB), fmt(s.cpuPercentOfCore, 2)]),
    ),
  );
  console.log(`RSS = VmRSS sampled every second; CPU = utime+stime over the ${seconds} s window. Agent capabilities: ${capabilities.join(", ")}.`);
  console.log(`measured agent (web-1): ${entry.label}`);
  const budgets = [
    `${sampled.agent.rssMaxBytes < BUDGET.agentRssBytes ? "ok  " : "MISS"} agent idle RSS ${fmt(sampled.agent.rssMaxBytes / MiB)} MB max (budget < 60 MB)`,
    `${sampled.agent.cpuPercentOfCore < BUDGET.agentCpuPercent ? "ok  " : "MISS"} agent idle CPU ${fmt(sampled.agent.cpuPercentOfCore, 2)}% of a core (budget < 1%)`,
  ];
  console.log(budgets.join("\n"));
  writeResult("footprint", { conditions: conditions({ seconds, apps: APPS.length, agentsConnected: 1 + OTHER_AGENTS, heartbeatInterval: "5s", switchMode: mode, capabilities, agentEntry: entry.label }), sampled, budgets });
  return true;
}
