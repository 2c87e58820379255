// `npm run demo`: a local fleet on this machine. A coordinator and three agents,
// each with its own nginx on 127.0.0.11–13, deploy the sample app v1, then v2
// by per-host blue/green under load, and print per-host results and request
// counts. `npm run demo -- --keep` leaves the fleet running to explore (Ctrl-C ends it).
import { spawn, execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { build, ensureInstalled, ensureNginx, root } from "./setup.mjs";

ensureInstalled();
ensureNginx();
build();

const { startLoad } = await import("../packages/testkit/dist/index.js");
const { stopHostProcesses } = await import("../test/dist/harness/host-processes.js");

const keep = process.argv.includes("--keep");
const CUTOVER = join(root, "coordinator", "bin", "cutover.js");
const AGENT = join(root, "agent", "bin", "cutover-agent.js");
const HOSTS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"];
const work = mkdtempSync(join(tmpdir(), "cutover-demo-"));
// The apps run as nobody and nginx's workers unprivileged: both pass through to the agents' state dirs.
chmodSync(work, 0o711);
const children = [];

function say(text) {
  process.stdout.write(`\n\x1b[1m== ${text}\x1b[0m\n`);
}

function start(label, file, args, onLine) {
  const child = spawn(process.execPath, [file, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => onLine?.(line));
  }
  return child;
}

function cli(args, { quiet = false } = {}) {
  return execFileSync(process.execPath, [CUTOVER, ...args], { env: { ...process.env, ...env }, encoding: "utf8", stdio: ["ignore", "pipe", quiet ? "pipe" : "inherit"] });
}

/** Runs a CLI verb with its output on the terminal; a failure stops the demo with the CLI's own message above. */
function cliShown(args) {
  const result = spawnSync(process.execPath, [CUTOVER, ...args], { env: { ...process.env, ...env }, stdio: "inherit" });
  if (result.status !== 0) throw new Error(`cutover ${args.join(" ")} exited with ${result.status}`);
}

async function canListen(address, port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, address, () => server.close(() => resolve(true)));
  });
}

function cleanup() {
  for (const child of children) child.kill("SIGTERM");
  for (const address of HOSTS) stopHostProcesses(join(work, `agent-${address}`));
  rmSync(work, { recursive: true, force: true });
}
process.on("SIGINT", () => {
  cleanup();
  process.exit(130);
});

let env = {};
try {
  say("starting the coordinator");
  const url = await new Promise((resolve, reject) => {
    const child = start("coordinator", CUTOVER, ["server", "--data-dir", join(work, "coordinator"), "--listen", "127.0.0.1:0", "--heartbeat-interval", "1s"], (line) => {
      const match = /^cutover server listening on (\S+)/.exec(line);
      if (match) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`the coordinator exited (${code})`)));
  });
  const token = execFileSync("cat", [join(work, "coordinator", "admin-token")], { encoding: "utf8" }).trim();
  env = { CUTOVER_URL: url, CUTOVER_TOKEN: token, CUTOVER_CONFIG: "/nonexistent" };
  console.log(`coordinator at ${url}; admin token in ${join(work, "coordinator", "admin-token")}`);

  say("starting three agents, each with its own nginx");
  await Promise.all(
    HOSTS.map(async (address, i) => {
      const enrollment = cli(["token", "create"], { quiet: true }).trim();
      await new Promise((resolve, reject) => {
        const child = start(`web-${i + 1}`, AGENT, [
          "--coordinator", url, "--token", enrollment, "--state-dir", join(work, `agent-${address}`),
          "--name", `web-${i + 1}`, "--labels", "role=geoip", "--address", address, "--nginx", "managed", "--config", "/dev/null",
        ], (line) => {
          if (/coordinator link .*to=online/.test(line)) resolve();
        });
        child.once("exit", (code) => reject(new Error(`agent web-${i + 1} exited (${code})`)));
      });
    }),
  );
  process.stdout.write(cli(["hosts"]));

  const listen = (await canListen(HOSTS[0], 80)) ? 80 : 8080;
  const spec = join(work, "geoip.yml");
  writeFileSync(
    spec,
    `app: geoip
artifact: ${join(root, "examples", "app")}
run:
  command: ["node", "server.mjs", "--port", "\${PORT}", "--host", "\${ADDRESS}"]
  user: nobody                      # agents refuse to run apps as root unless --allow-root-apps
  stop_timeout: 10s
ports: { blue: 7001, green: 7002 }
proxy: { listen: ${listen}, protocol: http }
health:
  http: { path: /health_check, expect_status: 200 }
  interval: 200ms
  healthy_threshold: 2
  deadline: 20s
hosts: { role: geoip }
strategy: { type: bluegreen, batch: 1, max_failures: 0, keep_previous: 10m }
`,
  );

  say(`deploying v1 (each host's nginx listens on ${HOSTS.map((h) => `${h}:${listen}`).join(", ")})`);
  cliShown(["deploy", spec, "--release", "v1"]);

  say("deploying v2 by per-host blue/green while clients keep sending requests");
  const loads = HOSTS.map((address) =>
    startLoad({
      address, port: listen, path: "/api/v1/geoip/1.2.3.4", concurrency: 2, ratePerSec: 100, retry: true, maxRequests: 1_000_000,
      classify: (status, headers) => (status === 200 ? String(headers["x-app-version"]) : null),
    }),
  );
  await Promise.all(loads.map((l) => l.completed(50)));
  cliShown(["deploy", spec, "--release", "v2"]);
  await Promise.all(loads.map((l) => l.completed(50)));
  const reports = await Promise.all(loads.map((l) => l.stop()));

  say("requests sent through each host's nginx during the v2 deploy");
  for (const [i, report] of reports.entries()) {
    console.log(
      `web-${i + 1} (${HOSTS[i]}:${listen}): ${report.requests} requests, ${report.failed} failed, ` +
        `${report.retries} retried on a closed keep-alive connection, answers by version ${JSON.stringify(report.answers)}`,
    );
  }
  const failed = reports.reduce((n, r) => n + r.failed, 0);
  console.log(`total: ${reports.reduce((n, r) => n + r.requests, 0)} requests, ${failed} failed`);

  say("status");
  process.stdout.write(cli(["status", "geoip"]));
  if (keep) {
    say("the fleet keeps running; try:");
    console.log(`  export CUTOVER_URL=${url} CUTOVER_TOKEN=${token}`);
    console.log(`  node ${CUTOVER} hosts`);
    console.log(`  node ${CUTOVER} rollback geoip`);
    console.log(`  curl -i http://${HOSTS[0]}:${listen}/api/v1/geoip/1.2.3.4`);
    console.log("Ctrl-C stops everything.");
    await new Promise(() => {});
  }
  cleanup();
  process.exit(failed === 0 ? 0 : 1);
} catch (error) {
  console.error(`demo failed: ${error.message}`);
  cleanup();
  process.exit(1);
}
