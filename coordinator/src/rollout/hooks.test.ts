// The coordinator's side of hooks: who may get a spec with hooks, and pre_deploy running once per deploy (also across a restart).
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@cutover/log";
import { RUNS_HOOKS, v1, type cutover } from "@cutover/protocol";
import { parseSpec, type AppSpec } from "@cutover/spec";
import type { Fleet } from "../fleet/fleet.js";
import { openDatabase } from "../store/database.js";
import { DeploymentStore } from "../store/deployments.js";
import type { HostRecord } from "../store/hosts.js";
import { afterPreDeploy, hooksUnsupported, PRE_DEPLOY_PASSED } from "./hooks.js";
import { RolloutRun, type RolloutDeps } from "./run.js";

const Status = v1.CommandResult.Status;

const spec = (hooks = "") =>
  parseSpec(`app: geoip\nrun: { command: [node, server.js] }\nports: { blue: 7001, green: 7002 }\nproxy: { listen: 80 }\nhealth: { tcp: {} }\nhosts: { role: geoip }\n${hooks}`, { file: "app.yml", exists: () => null });
const WITH_PRE_DEPLOY = 'hooks:\n  pre_deploy: { command: [node, migrate.js, "${RELEASE}"], timeout: 30s }\n';

const host = (name: string, capabilities = ["deploy.bluegreen", RUNS_HOOKS], agentVersion = "0.2.0") => ({ id: `id-${name}`, name, capabilities, agentVersion }) as HostRecord;

test("a spec without hooks goes to any agent", (t) => {
  t.is(hooksUnsupported(spec(), [host("web-1", ["deploy.bluegreen"])]), undefined);
});

test("a spec with hooks is refused for a fleet where an agent lacks the hooks capability, naming it and its version", (t) => {
  const hosts = [host("web-1"), host("web-2", ["deploy.bluegreen"], "0.1.0"), host("web-3")];
  t.is(
    hooksUnsupported(spec(WITH_PRE_DEPLOY), hosts),
    'the spec has hooks (pre_deploy), which the agents of web-2 (agent 0.1.0) cannot run (no "hooks" capability): upgrade those agents, or deploy without hooks',
  );
  t.is(hooksUnsupported(spec(WITH_PRE_DEPLOY), [host("web-1"), host("web-3")]), undefined);
});

/** A rollout of `app` on web-1..3 over a real store and a fleet that answers RunHook with `answer`. */
function rollout(t: { teardown(fn: () => void): void }, appSpec: AppSpec, answer: (command: cutover.v1.RunHook.$Properties, id: string) => cutover.v1.CommandResult.$Properties) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-hooks-"));
  const db = openDatabase(join(dir, "data"));
  t.teardown(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const deployments = new DeploymentStore(db);
  const hosts = [host("web-1"), host("web-2"), host("web-3")];
  const sent: { host: string; commandId: string; runHook: cutover.v1.RunHook.$Properties }[] = [];
  const fleet = {
    whenOnline: async () => true,
    sendCommand: async (to: HostRecord, operation: { runHook?: cutover.v1.RunHook.$Properties }, _timeout: number, onEvent?: (e: cutover.v1.Event) => void, commandId = "") => {
      sent.push({ host: to.name, commandId, runHook: operation.runHook! });
      onEvent?.(v1.Event.create({ kind: "hook.output", message: "migrating" }));
      return v1.CommandResult.create({ commandId, ...answer(operation.runHook!, commandId) });
    },
  } as unknown as Fleet;
  const deps = { fleet, deployments, log: createLogger("test", { write: () => {} }) } as unknown as RolloutDeps;
  const deployment = deployments.create({ app: "geoip", kind: "deploy", release: "v2", strategy: "bluegreen", spec: appSpec, createdBy: "test", hosts: hosts.map((h, i) => ({ name: h.name, batch: i + 1 })) });
  const deployOperation = () => ({ deploy: { app: { name: "geoip" }, release: "v2", artifact: { sha256: "ab".repeat(32) }, secrets: { DB: "s3cret" } } });
  const newRun = () => new RolloutRun(deps, deployments.get(deployment.id)!, appSpec, deployOperation);
  return { deployments, hosts, sent, id: deployment.id, newRun };
}

test("pre_deploy runs once, on the first host, before the work; a resumed deployment that finds it passed does not run it again", async (t) => {
  const r = rollout(t, spec(WITH_PRE_DEPLOY), () => ({ status: Status.OK, hookRan: { exitCode: 0, durationMs: 12 } }));
  let worked = 0;
  const work = async () => {
    worked++;
  };
  await afterPreDeploy(r.hosts, work)(r.newRun());
  // The coordinator restarts mid-deploy: a new run of the same deployment.
  await afterPreDeploy(r.hosts, work)(r.newRun());
  t.is(worked, 2);
  t.is(r.sent.length, 1);
  const [sent] = r.sent;
  const row = r.deployments.host(r.id, "web-1")!;
  t.is(sent!.host, "web-1");
  t.is(sent!.commandId, `${row.commandId}.pre_deploy`, "the hook's id derives from web-1's recorded Deploy id (which lets web-1 fetch the artifact)");
  t.is(row.state, "pending");
  t.like(sent!.runHook, { hook: "pre_deploy", release: "v2", command: ["node", "migrate.js", "${RELEASE}"], timeoutMs: 30_000, secrets: { DB: "s3cret" } });
  const events = r.deployments.events(r.id).map((e) => [e.hostName, e.kind, e.message]);
  t.deepEqual(events.filter(([, kind]) => kind === PRE_DEPLOY_PASSED), [["web-1", PRE_DEPLOY_PASSED, "pre_deploy passed in 12 ms"]]);
  t.true(events.some(([h, kind, message]) => h === "web-1" && kind === "hook.output" && message === "migrating"));
  t.true(events.some(([, , message]) => message === "pre_deploy hook passed before the coordinator restarted: not run again"));
});

test("a failing pre_deploy ends the deployment failed before the work, every host skipped, its output in the error", async (t) => {
  const r = rollout(t, spec(WITH_PRE_DEPLOY), () => ({
    status: Status.FAILED,
    errorCode: "ERR_HOOK_FAILED",
    message: "the pre_deploy hook exited with code 3 after 80 ms",
    hookRan: { exitCode: 3, outputTail: "migrating\nERROR: relation users is locked" },
  }));
  let worked = 0;
  await afterPreDeploy(r.hosts, async () => {
    worked++;
  })(r.newRun());
  t.is(worked, 0);
  const deployment = r.deployments.get(r.id)!;
  t.is(deployment.state, "failed");
  t.is(
    deployment.error,
    "pre_deploy hook failed on web-1: the pre_deploy hook exited with code 3 after 80 ms (ERR_HOOK_FAILED); its last output: migrating | ERROR: relation users is locked; no host was switched",
  );
  t.deepEqual(r.deployments.hosts(r.id).map((h) => h.state), ["skipped", "skipped", "skipped"]);
});

test("without a pre_deploy hook nothing is sent before the work", async (t) => {
  const r = rollout(t, spec('hooks:\n  post_switch: { command: [./smoke] }\n'), () => t.fail("sent") as never);
  let worked = 0;
  await afterPreDeploy(r.hosts, async () => {
    worked++;
  })(r.newRun());
  t.is(worked, 1);
  t.is(r.sent.length, 0);
});
