import test from "ava";
import { writeExampleSpec } from "./harness/app-spec.js";
import { jsonError } from "./harness/cli-error.js";
import { startFleet, type AuditRow, type CoordinatorProcess, type Fleet } from "./harness/fleet.js";
import { getThroughProxy } from "./harness/through-proxy.js";

const LISTEN = 8080;
const PORTS = { listen: LISTEN, blue: 7001, green: 7002, batch: 2 };
/** How long the hosts' heartbeats get to report what a deploy left live (they come every second). */
const REPORTED_WITHIN_MS = 15_000;

interface PlanJson {
  app: string;
  release: string;
  strategy: string;
  outcome: "no-change" | "change" | "refused";
  batches: string[][];
  hosts: { name: string; batch: number; liveColor: string | null; release: { from: string | null; to: string }; action: "deploy" | "none" }[];
  leftOut: string[];
  specChanges: { field: string; from: unknown; to: unknown }[] | null;
  preflight: { ok: boolean; hosts: { name: string; ok: boolean }[] };
  artifact: { sha256: string; bytes: number; uploaded: boolean } | null;
  refusals: { code: string; message: string }[];
}

interface DeploymentJson {
  id: string;
  state: string;
  hosts: { name: string; batch: number; outcome: string }[];
}

interface ProgressEvent {
  hostName: string | null;
  kind: string;
  message: string;
}

async function api<T>(coordinator: CoordinatorProcess, path: string): Promise<T> {
  const response = await fetch(`${coordinator.url}${path}`, { headers: { authorization: `Bearer ${coordinator.adminToken}` } });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** Every event of a finished deployment, in order, from the stream `cutover deploy` follows. */
async function deploymentEvents(coordinator: CoordinatorProcess, id: string): Promise<ProgressEvent[]> {
  const response = await fetch(`${coordinator.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${coordinator.adminToken}` } });
  const text = await response.text();
  return [...text.matchAll(/^event: progress\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!) as ProgressEvent);
}

/** Waits for the hosts' heartbeats to report `release` live everywhere (what the plan reads), as `cutover status` shows it. */
async function reported(fleet: Fleet, release: string): Promise<void> {
  const deadline = Date.now() + REPORTED_WITHIN_MS;
  for (;;) {
    const { json } = await fleet.coordinator.cliJson<{ hosts: { release: string | null }[] }>(["status", "geoip"]);
    if (json.hosts.length === fleet.agents.length && json.hosts.every((h) => h.release === release)) return;
    if (Date.now() > deadline) throw new Error(`status never showed ${release} on every host: ${JSON.stringify(json.hosts)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function auditRows(coordinator: CoordinatorProcess): Promise<AuditRow[]> {
  return (await coordinator.cliJson<AuditRow[]>(["audit", "--limit", "1000"])).json;
}

test.serial("deploy --plan shows the hosts, batches, release and spec changes the deploy then takes, and changes nothing", async (t) => {
  const fleet = await startFleet(t, { hosts: 3 });
  const { coordinator } = fleet;
  const spec = writeExampleSpec(fleet.dir, PORTS);
  const first = await coordinator.cliJson<PlanJson>(["deploy", spec, "--release", "v1", "--plan"]);
  t.is(first.exitCode, 2, first.stderr);
  t.like(first.json, { outcome: "change", specChanges: null, artifact: { uploaded: false } });
  t.deepEqual(first.json.hosts.map((h) => [h.name, h.liveColor, h.release.from, h.action]), [
    ["web-1", null, null, "deploy"],
    ["web-2", null, null, "deploy"],
    ["web-3", null, null, "deploy"],
  ]);
  t.deepEqual((await coordinator.cliJson<unknown[]>(["history", "geoip"])).json, []);
  const v1 = await coordinator.cli(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  await reported(fleet, "v1");

  const auditBefore = await auditRows(coordinator);
  const plan = await coordinator.cliJson<PlanJson>(["deploy", spec, "--release", "v2", "--plan"]);
  t.is(plan.exitCode, 2, plan.stderr);
  t.deepEqual(jsonError(plan), { code: "ERR_PLAN_CHANGES", message: "plan: the deploy would change geoip (3 of 3 host(s) get v2); nothing was changed" });
  t.like(plan.json, { app: "geoip", release: "v2", strategy: "bluegreen", outcome: "change", leftOut: [], specChanges: [], refusals: [], preflight: { ok: true } });
  t.deepEqual(plan.json.batches, [["web-1", "web-2"], ["web-3"]]);
  t.deepEqual(plan.json.hosts.map((h) => [h.name, h.batch, h.liveColor, `${h.release.from}→${h.release.to}`, h.action]), [
    ["web-1", 1, "blue", "v1→v2", "deploy"],
    ["web-2", 1, "blue", "v1→v2", "deploy"],
    ["web-3", 2, "blue", "v1→v2", "deploy"],
  ]);
  t.true(plan.json.artifact?.uploaded, "the same tree as v1: the coordinator has it, nothing to upload");

  const table = await coordinator.cli(["deploy", spec, "--release", "v2", "--plan"]);
  t.is(table.exitCode, 2, table.stderr);
  t.log(table.stdout);
  t.regex(table.stdout, /^plan: deploy geoip v2 \(bluegreen\) to 3 host\(s\) in 2 batch\(es\); nothing was changed$/m);
  t.regex(table.stdout, /^BATCH\s+HOST\s+LIVE\s+RELEASE\s+ACTION$/m);
  t.regex(table.stdout, /^1\s+web-1\s+blue\s+v1 → v2\s+deploy$/m);
  t.regex(table.stdout, /^2\s+web-3\s+blue\s+v1 → v2\s+deploy$/m);
  t.regex(table.stdout, /^spec: unchanged from the last deployed spec$/m);
  t.regex(table.stdout, /^preflight: pass$/m);
  t.regex(table.stdout, /^HOST\s+CHECK\s+RESULT\s+NEEDS\s+HAS\s+WHY$/m, "the same table as `cutover check`");

  // A read token may plan (it shows what status and check show); it may not deploy.
  const reader = (await coordinator.cliJson<{ token: string }>(["token", "create", "--api", "--role", "read", "--name", "reviewer"])).json.token;
  const byReader = await coordinator.cli(["deploy", spec, "--release", "v2", "--plan", "--json"], reader);
  t.is(byReader.exitCode, 2, byReader.stderr);
  // --batch applies to the plan as to the deploy (and shows as a spec change).
  const oneByOne = await coordinator.cliJson<PlanJson>(["deploy", spec, "--release", "v2", "--plan", "--batch", "1"]);
  t.is(oneByOne.exitCode, 2);
  t.deepEqual(oneByOne.json.batches, [["web-1"], ["web-2"], ["web-3"]]);
  t.deepEqual(oneByOne.json.specChanges, [{ field: "strategy.batch", from: { kind: "count", count: 2 }, to: { kind: "count", count: 1 } }]);

  t.deepEqual(
    await Promise.all(fleet.addresses.map(async (a) => (await getThroughProxy(a, LISTEN)).version)),
    ["v1", "v1", "v1"],
    "every host still serves v1",
  );
  const lastBefore = Math.max(0, ...auditBefore.map((r) => r.id));
  const planned = (await auditRows(coordinator)).filter((r) => r.id > lastBefore);
  t.deepEqual([...new Set(planned.map((r) => r.action))].sort(), ["POST /v1/deployments/plan", "POST /v1/tokens/api"], "no command to an agent, no upload, no deployment");
  t.is((await coordinator.cliJson<unknown[]>(["history", "geoip"])).json.length, 1, "the plans left no deployment");

  // The real deploy takes the planned order: its record and its events.
  const v2 = await coordinator.cliJson<{ id: string; status: string }>(["deploy", spec, "--release", "v2"]);
  t.is(v2.exitCode, 0, v2.stderr);
  const record = await api<DeploymentJson>(coordinator, `/v1/deployments/${v2.json.id}`);
  t.deepEqual(
    record.hosts.map((h) => ({ name: h.name, batch: h.batch })),
    plan.json.hosts.map((h) => ({ name: h.name, batch: h.batch })),
  );
  const events = await deploymentEvents(coordinator, v2.json.id);
  t.deepEqual(events.filter((e) => e.kind === "batch").map((e) => e.message), plan.json.batches.map((b, i) => `batch ${i + 1}/${plan.json.batches.length}: ${b.join(", ")}`));
  const firstEventOf = (host: string) => events.findIndex((e) => e.hostName === host);
  const lastEventOf = (host: string) => events.map((e) => e.hostName).lastIndexOf(host);
  t.true(Math.max(lastEventOf("web-1"), lastEventOf("web-2")) < firstEventOf("web-3"), "batch 2 started after batch 1 was done");

  await reported(fleet, "v2");
  const again = await coordinator.cliJson<PlanJson>(["deploy", spec, "--release", "v2", "--plan"]);
  t.is(again.exitCode, 0, again.stderr);
  t.like(again.json, { outcome: "no-change", specChanges: [] });
  t.deepEqual(again.json.hosts.map((h) => [h.name, h.liveColor, `${h.release.from}→${h.release.to}`, h.action]), [
    ["web-1", "green", "v2→v2", "none"],
    ["web-2", "green", "v2→v2", "none"],
    ["web-3", "green", "v2→v2", "none"],
  ]);
  const unchanged = await coordinator.cli(["deploy", spec, "--release", "v2", "--plan"]);
  t.is(unchanged.exitCode, 0);
  t.regex(unchanged.stdout, /^no change: every host already serves v2 with this spec$/m);

  // A changed field shows in the diff; the hosts already on v2 keep their instances.
  const longer = writeExampleSpec(fleet.dir, { ...PORTS, deadline: "20s" }, "longer-deadline.yml");
  const changed = await coordinator.cliJson<PlanJson>(["deploy", longer, "--release", "v2", "--plan"]);
  t.is(changed.exitCode, 2, changed.stderr);
  t.deepEqual(changed.json.specChanges, [{ field: "health.deadlineMs", from: 15_000, to: 20_000 }]);
  t.true(changed.json.hosts.every((h) => h.action === "none"));
  const changedTable = await coordinator.cli(["deploy", longer, "--release", "v3", "--plan"]);
  t.is(changedTable.exitCode, 2);
  t.log(changedTable.stdout);
  t.regex(changedTable.stdout, /^ {2}health\.deadlineMs: 15s → 20s$/m);
  t.regex(changedTable.stdout, /^1\s+web-1\s+green\s+v2 → v3\s+deploy$/m);

  // A locked app: the plan is shown, and says the deploy would be refused now.
  t.is((await coordinator.cli(["lock", "acquire", "geoip", "-m", "freeze"])).exitCode, 0);
  const locked = await coordinator.cliJson<PlanJson>(["deploy", spec, "--release", "v3", "--plan"]);
  t.is(locked.exitCode, 1);
  t.like(locked.json, { outcome: "refused", batches: [["web-1", "web-2"], ["web-3"]] });
  t.deepEqual(locked.json.refusals.map((r) => r.code), ["ERR_APP_LOCKED"]);
  t.is((await coordinator.cli(["lock", "release", "geoip"])).exitCode, 0);

  // A failing preflight is shown, and the plan exits 1 as `cutover check` does.
  const greedy = writeExampleSpec(fleet.dir, { ...PORTS, minFreeMemory: "64T" }, "greedy.yml");
  const refused = await coordinator.cliJson<PlanJson>(["deploy", greedy, "--release", "v3", "--plan"]);
  t.is(refused.exitCode, 1);
  t.like(refused.json, { outcome: "refused", preflight: { ok: false } });
  t.deepEqual(refused.json.refusals.map((r) => r.code), ["ERR_PREFLIGHT_FAILED"]);
  t.deepEqual(refused.json.batches, [["web-1", "web-2"], ["web-3"]], "the order is still shown");
  const refusedError = jsonError(refused);
  t.is(refusedError.code, "ERR_FAILED", "the refusals' own codes are in the plan on stdout");
  t.regex(refusedError.message, /^plan: a deploy now would be refused: the resource preflight failed on 3 host\(s\)/);
  const refusedTable = await coordinator.cli(["deploy", greedy, "--release", "v3", "--plan"]);
  t.is(refusedTable.exitCode, 1);
  t.regex(refusedTable.stdout, /^preflight: FAIL$/m);
  t.regex(refusedTable.stdout, /^web-1\s+reachable\s+pass/m);
  t.regex(refusedTable.stdout, /^\s+memory\s+FAIL\s+64 TiB/m);

  const history = (await coordinator.cliJson<{ kind: string; release: string; state: string }[]>(["history", "geoip"])).json;
  t.deepEqual(history.map((d) => [d.kind, d.release, d.state]), [
    ["deploy", "v2", "succeeded"],
    ["deploy", "v1", "succeeded"],
  ], "only the real deploys are in the history");
});
