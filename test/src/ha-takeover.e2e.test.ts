import test from "ava";
import { postgresMissing } from "@cutover/testkit";
import { writeExampleSpec } from "./harness/app-spec.js";
import type { CoordinatorProcess } from "./harness/fleet.js";
import { serverStatus, startHaCluster, type HaCluster } from "./harness/ha-cluster.js";
import { mulberry32 } from "./harness/seeded-random.js";
import { getThroughProxy, loadThroughProxies } from "./harness/through-proxy.js";

/**
 * Three coordinators share one PostgreSQL (docs/ha.md). During a 10-host blue/green rollout
 * the leader is SIGKILLed at a seeded random moment: a follower takes the lease over, resumes
 * the rollout by the restart rules, and it completes; every host serves the new release, no
 * host starts it twice, and a client through every host's proxy sees no failed request.
 * `npm test` runs 3 seeds, `npm run test:faults` 20.
 */
const HOSTS = 10;
const RUNS = Number(process.env.CUTOVER_FAULT_RUNS ?? 3);
const PORTS = { listen: 8080, blue: 7001, green: 7002 };
const missing = postgresMissing();

interface Ended {
  state: string;
  hosts: { name: string; outcome: string; release: string | null; error?: string | null }[];
}

/** The deployment's end, read through whichever member answers (a follower forwards the stream to the leader). */
async function finished(cluster: HaCluster, id: string): Promise<Ended> {
  for (let attempt = 0; ; attempt++) {
    const member = cluster.members[attempt % cluster.members.length]!;
    try {
      const response = await fetch(`${member.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${member.adminToken}` } });
      const text = await response.text(); // ends with the deployment, or breaks with the leader
      const end = /event: end\ndata: (.*)\n/.exec(text);
      if (end) return JSON.parse(end[1]!) as Ended;
    } catch {
      // The member died under the stream: ask the next one.
    }
    await new Promise((resolve) => setTimeout(resolve, 200)); // no leader this instant: ask again
  }
}

/**
 * Milliseconds from `since` to the first event of the rollout about a host that the new leader
 * wrote after it: the new leader sending the rollout's commands again.
 */
async function firstHostEventAfter(leader: CoordinatorProcess, id: string, since: number): Promise<number | undefined> {
  const controller = new AbortController();
  const response = await fetch(`${leader.url}/v1/deployments/${id}/events`, { headers: { authorization: `Bearer ${leader.adminToken}` }, signal: controller.signal });
  let text = "";
  try {
    for await (const chunk of response.body!) {
      text += Buffer.from(chunk as Uint8Array).toString("utf8");
      for (const match of text.matchAll(/event: progress\ndata: (.*)\n/g)) {
        const event = JSON.parse(match[1]!) as { at: number; hostName: string | null };
        if (event.at > since && event.hostName) return event.at - since;
      }
      if (text.includes("event: end")) return undefined; // it had ended before the kill
    }
  } finally {
    controller.abort();
  }
  return undefined;
}

if (missing) {
  test.skip(`HA takeover e2e: skipped, ${missing}`, () => {});
} else {
  test.serial(`three coordinators on one PostgreSQL: the leader SIGKILLed at random points of a ${HOSTS}-host blue/green rollout (${RUNS} seeded runs): every rollout completes under the new leader, every host serves it, no step twice, 0 failed requests`, async (t) => {
    const cluster = await startHaCluster(t, { members: 3, hosts: HOSTS });
    const spec = writeExampleSpec(cluster.dir, { ...PORTS, batch: 2 });
    const first = await cluster.members[1]!.cli(["deploy", spec, "--release", "r0", "--json"]);
    t.is(first.exitCode, 0, `a deploy through a follower: ${first.stderr}`);
    const load = loadThroughProxies(t, cluster.addresses, PORTS.listen, { retry: true, concurrency: 1 });
    const baseSeed = Number(process.env.CUTOVER_FAULT_SEED ?? 20261202);
    const takeovers: number[] = [];
    for (let i = 1; i <= RUNS; i++) {
      const seed = baseSeed + i;
      const random = mulberry32(seed);
      const release = `r${i}`;
      const leader = await cluster.leader();
      const { epoch } = (await serverStatus(leader))!;
      const follower = cluster.members.find((m) => m !== leader)!;
      const started = await follower.cli(["deploy", spec, "--release", release, "--detach", "--json"]);
      t.is(started.exitCode, 0, started.stderr);
      const { id } = JSON.parse(started.stdout) as { id: string };
      const delay = Math.floor(random() * 3000);
      await new Promise((resolve) => setTimeout(resolve, delay)); // the fault's moment: a seeded random point of the rollout, not a wait for an event
      const marks = cluster.agents.map((agent) => agent.process.mark());
      await leader.process.kill("SIGKILL");
      const killedAt = Date.now();
      // With the leader gone and its lease not yet expired, a follower still serves what the store holds.
      const history = await follower.cli(["history", "geoip", "--json"]);
      t.is(history.exitCode, 0, `seed ${seed}: history through a follower with no live leader: ${history.stderr}`);
      t.true(history.stdout.includes(id), `seed ${seed}: the running deployment is in it`);
      const next = await cluster.newLeader(leader, epoch);
      const leaseMs = Date.now() - killedAt;
      const actingMs = await firstHostEventAfter(next.leader, id, killedAt);
      if (actingMs !== undefined) takeovers.push(actingMs);
      await leader.start(); // back as a follower: the lease is another's
      const result = await finished(cluster, id);
      const why = result.state === "succeeded" ? "" : ` (${result.hosts.filter((h) => h.error).map((h) => `${h.name}: ${h.error}`).join("; ") || "no host error"})`;
      t.log(`seed ${seed}: leader killed ${delay} ms into ${release}; epoch ${epoch} → ${next.epoch}; lease taken ${leaseMs} ms after the kill, ${actingMs === undefined ? "the rollout had ended before the kill" : `the new leader acting on the rollout ${actingMs} ms after it`}; the rollout ${result.state}${why}`);
      t.is(result.state, "succeeded", `seed ${seed}: a blue/green rollout resumes under the new leader and completes`);
      const answers = await Promise.all(cluster.addresses.map((a) => getThroughProxy(a, PORTS.listen)));
      t.true(answers.every((a) => a.status === 200 && a.version === release), `seed ${seed}: every host serves ${release}: ${answers.map((a) => `${a.status} ${a.version}`).join(", ")}`);
      for (const agent of cluster.agents) {
        const starts = agent.process.lines.filter((l) => l.includes(`starting ${release} on`)).length;
        t.is(starts, 1, `seed ${seed}: ${agent.options.name} started ${release} ${starts} times`);
      }
      // Every agent lost its session with the killed leader. One whose step the old leader had
      // recorded is not needed for the rollout to finish, and may still be in its reconnect
      // backoff: the next run's preflight would find it unreachable.
      await Promise.all(cluster.agents.map((agent, a) => agent.online(marks[a])));
    }
    const reports = await Promise.all(load.runs.map((r) => r.stop()));
    const requests = reports.reduce((n, r) => n + r.requests, 0);
    t.log(`takeover (kill → new leader acting on the rollout): ${takeovers.map((ms) => `${ms} ms`).join(", ")}; requests: ${requests}, failed: ${reports.reduce((n, r) => n + r.failed, 0)}`);
    t.deepEqual(reports.flatMap((r) => r.failures), []);
  });
}
