import test from "ava";
import { postgresMissing } from "@cutover/testkit";
import { writeExampleSpec } from "./harness/app-spec.js";
import type { CoordinatorProcess } from "./harness/fleet.js";
import { serverStatus, startHaCluster } from "./harness/ha-cluster.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";

/**
 * A leader paused (SIGSTOP) in the middle of a rollout loses its lease; a follower takes over
 * and finishes the rollout. When the old leader is resumed its rollout carries on where it was
 * in its memory: it must write nothing to the store, send nothing an agent acts on, and stop.
 */
const PORTS = { listen: 8080, blue: 7001, green: 7002 };
const missing = postgresMissing();

/** What the old leader's rollout would change if it could write: deployments, their hosts and events, the audit trail, the lease. */
const STORE_FINGERPRINT = `SELECT concat_ws(' | ',
  (SELECT md5(coalesce(string_agg(id || state || coalesce(error, '') || coalesce(finished_at::text, ''), ',' ORDER BY id), '')) FROM deployments),
  (SELECT md5(coalesce(string_agg(deployment_id || host_name || state || coalesce(release, '') || coalesce(command_id, ''), ',' ORDER BY deployment_id, host_name), '')) FROM deployment_hosts),
  (SELECT count(*) FROM deployment_events),
  (SELECT count(*) FROM audit),
  (SELECT count(*) FROM app_locks),
  (SELECT holder || ' epoch ' || epoch FROM coordinator_lease))`;

async function ended(member: CoordinatorProcess, id: string): Promise<{ state: string }> {
  for (;;) {
    const response = await fetch(`${member.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${member.adminToken}` } });
    const end = /event: end\ndata: (.*)\n/.exec(await response.text());
    if (end) return JSON.parse(end[1]!) as { state: string };
  }
}

if (missing) {
  test.skip(`HA fencing e2e: skipped, ${missing}`, () => {});
} else {
  test.serial("a leader paused mid-rollout and resumed after losing its lease writes nothing, sends nothing agents act on, and stops", async (t) => {
    const cluster = await startHaCluster(t, { members: 3, hosts: 2 });
    const spec = writeExampleSpec(cluster.dir, { ...PORTS, batch: 1 });
    const old = await cluster.leader();
    t.is((await old.cli(["deploy", spec, "--release", "r0", "--json"])).exitCode, 0);
    const load = loadThroughProxies(t, cluster.addresses, PORTS.listen, { retry: true, concurrency: 1 });
    const { epoch } = (await serverStatus(old))!;

    const marks = cluster.agents.map((a) => a.process.mark());
    const started = await old.cli(["deploy", spec, "--release", "r1", "--detach", "--json"]);
    t.is(started.exitCode, 0, started.stderr);
    const { id } = JSON.parse(started.stdout) as { id: string };
    await cluster.agents[0]!.process.waitForLine(/starting r1 on/, marks[0]);
    old.process.child.kill("SIGSTOP");
    t.teardown(() => old.process.child.kill("SIGCONT"));

    const next = await cluster.newLeader(old, epoch);
    t.log(`paused the leader (epoch ${epoch}) once web-1 started r1; ${next.leader.url} took over under epoch ${next.epoch}`);
    t.is((await ended(next.leader, id)).state, "succeeded", "the new leader finishes the rollout the paused one began");
    const answers = await Promise.all(cluster.addresses.map((a) => getThroughProxy(a, PORTS.listen)));
    t.deepEqual(answers.map((a) => [a.status, a.version]), [[200, "r1"], [200, "r1"]]);

    const before = cluster.postgres.query(cluster.storeUrl, STORE_FINGERPRINT).trim();
    const agentMarks = cluster.agents.map((a) => a.process.mark());
    const oldMark = old.process.mark();
    old.process.child.kill("SIGCONT");
    const exit = await old.process.exited;
    t.is(exit.code, 75, "the resumed leader stops once it learns it lost the lease (its supervisor restarts it as a follower)");
    const oldLines = old.process.lines.slice(oldMark);
    t.true(oldLines.some((l) => l.includes("lost the lease")), oldLines.slice(-20).join("\n"));
    t.is(cluster.postgres.query(cluster.storeUrl, STORE_FINGERPRINT).trim(), before, "the resumed leader wrote nothing to the store");
    for (const [i, agent] of cluster.agents.entries()) {
      const after = agent.process.lines.slice(agentMarks[i]);
      t.false(after.some((l) => /starting r\d+ on|switch(ed|ing) /.test(l)), `${agent.options.name} acted on nothing after the old leader resumed:\n${after.join("\n")}`);
      t.is(agent.process.lines.filter((l) => l.includes("starting r1 on")).length, 1, `${agent.options.name} started r1 once`);
    }
    const refused = oldLines.filter((l) => /ERR_FENCED|ERR_NOT_LEADER|does not lead/.test(l)).length;
    t.log(`after SIGCONT the old leader logged ${oldLines.length} lines, ${refused} of them a refused write or send, then exited ${exit.code}`);
    const reports = await Promise.all(load.runs.map((r) => r.stop()));
    t.deepEqual(reports.flatMap((r) => r.failures), []);
  });
}
