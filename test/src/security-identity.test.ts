/**
 * Issue 11, findings 2, 3 and 6 (hosts): who a host is to the fleet is the
 * coordinator's record, never what its agent says; what the coordinator
 * signs names the host and the session; a removed host is refused for good.
 * Each test is an attack that worked before and is refused now, with what an
 * operator sees.
 */
import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { RefusalCode, v1, type cutover } from "@cutover/protocol";
import type { HostView } from "@cutover/coordinator";
import { inProcessCoordinator, type InProcessCoordinator } from "./harness/in-process.js";
import { newKey, RawAgent, type TestKey } from "./harness/raw-agent.js";
import { runCli } from "./harness/processes.js";


async function enrollmentToken(c: InProcessCoordinator, binding: { labels?: Record<string, string>; address?: string } = {}): Promise<string> {
  const labels = binding.labels && Object.entries(binding.labels).map(([k, v]) => `${k}=${v}`).join(",");
  const { status, body } = await c.api("POST", "/v1/tokens/enrollment", { body: { ...(labels && { labels }), ...(binding.address && { address: binding.address }) } });
  if (status !== 201) throw new Error(`token create: ${status} ${JSON.stringify(body)}`);
  return body.token as string;
}

async function hostNamed(c: InProcessCoordinator, name: string): Promise<HostView | undefined> {
  return ((await c.api("GET", "/v1/hosts")).body as HostView[]).find((h) => h.name === name);
}

function cli(c: InProcessCoordinator, args: string[]) {
  return runCli(args, { CUTOVER_URL: c.coordinator.url, CUTOVER_TOKEN: c.adminToken, CUTOVER_CONFIG: "/nonexistent-cutover-cli.yaml" });
}

/** Connects as `name` with `key` and answers the handshake; the caller closes it. */
async function session(c: InProcessCoordinator, options: { name: string; key: TestKey; token?: string; labels?: Record<string, string>; address?: string }) {
  const agent = await RawAgent.connect(c.coordinator.url);
  const outcome = await agent.handshake(options);
  return { agent, outcome };
}

test("a host that relabels itself in Hello is not moved into another app: its labels stay as enrolled, the change waits for an admin, audited", async (t) => {
  const c = await inProcessCoordinator(t);
  const key = newKey();
  const token = await enrollmentToken(c, { labels: { tier: "web" }, address: "127.0.0.71" });
  const first = await session(c, { name: "host-a", key, token, labels: { tier: "web" }, address: "127.0.0.71" });
  t.truthy(first.outcome.welcome);
  first.agent.close();
  await first.agent.closed;

  // The attack: the same enrolled key comes back claiming the payments tier and another address.
  const relabelled = await session(c, { name: "host-a", key, labels: { tier: "payments" }, address: "127.0.0.99" });
  t.truthy(relabelled.outcome.welcome, "the host keeps its session (it is still the host it was)");
  t.teardown(() => relabelled.agent.close());
  const host = await hostNamed(c, "host-a");
  t.deepEqual(host?.labels, { tier: "web" }, "app selectors still see the enrolled labels");
  t.is(host?.address, "127.0.0.71", "load balancers still send traffic to the enrolled address");
  t.deepEqual(host?.pendingLabels, { tier: "payments" });
  t.is(host?.pendingAddress, "127.0.0.99");

  const listed = await cli(c, ["hosts"]);
  t.regex(listed.stdout, /PENDING/);
  t.regex(listed.stdout, /host-a .*tier=web +labels tier=payments; address 127\.0\.0\.99/);
  const audit = (await c.api("GET", "/v1/audit")).body as { actor: string; action: string; outcome: string; detail: string }[];
  t.true(
    audit.some((e) => e.actor === "host host-a" && e.action === "hello: identity change requested" && e.outcome === "pending" && /tier=web -> tier=payments/.test(e.detail) && /127\.0\.0\.71 -> 127\.0\.0\.99/.test(e.detail)),
    "the attempt is audited with what it asked for",
  );
  await c.waitForLog(/host presents labels or an address other than its record/);

  // An admin decides: accept what the agent asks for, then set labels by hand.
  const accepted = await cli(c, ["hosts", "accept", "host-a"]);
  t.is(accepted.exitCode, 0, accepted.stderr);
  t.like(await hostNamed(c, "host-a"), { labels: { tier: "payments" }, address: "127.0.0.99", pendingLabels: null, pendingAddress: null });
  const labelled = await cli(c, ["hosts", "label", "host-a", "tier=web", "zone=b"]);
  t.is(labelled.exitCode, 0, labelled.stderr);
  t.regex(labelled.stdout, /host-a: labels tier=web,zone=b/);
  const removedLabel = await cli(c, ["hosts", "label", "host-a", "zone-"]);
  t.regex(removedLabel.stdout, /host-a: labels tier=web$/m);
  const trail = ((await c.api("GET", "/v1/audit")).body as { action: string; target: string; detail: string }[]).map((e) => `${e.action} ${e.detail}`);
  t.true(trail.some((line) => /POST \/v1\/hosts\/host-a\/accept .*labels tier=web -> tier=payments; address 127\.0\.0\.71 -> 127\.0\.0\.99/.test(line)), trail.join("\n"));
  t.true(trail.some((line) => /POST \/v1\/hosts\/host-a\/labels .*labels tier=payments -> tier=web,zone=b/.test(line)), trail.join("\n"));
  const nothing = await cli(c, ["hosts", "accept", "host-a"]);
  t.is(nothing.exitCode, 65, "refused: nothing to accept (ERR_NOTHING_PENDING)");
  t.regex(nothing.stderr, /asks for no change: its agent presents the labels and address on record \(ERR_NOTHING_PENDING\)/);
});

test("labels and address bound by the enrollment token are the host's, whatever its agent presents at enrollment", async (t) => {
  const c = await inProcessCoordinator(t);
  const token = await enrollmentToken(c, { labels: { role: "geoip" }, address: "127.0.0.72" });
  const { agent, outcome } = await session(c, { name: "host-b", key: newKey(), token, labels: { role: "payments" }, address: "127.0.0.98" });
  t.teardown(() => agent.close());
  t.truthy(outcome.welcome);
  t.like(await hostNamed(c, "host-b"), { labels: { role: "geoip" }, address: "127.0.0.72", pendingLabels: { role: "payments" }, pendingAddress: "127.0.0.98" });
  const audit = (await c.api("GET", "/v1/audit")).body as { action: string; detail: string }[];
  t.true(audit.some((e) => e.action === "enroll" && /labels role=geoip, address 127\.0\.0\.72 \(bound by the token\)/.test(e.detail)));
});

test("a label edit that is not key=value or key- is refused before anything is sent", async (t) => {
  const c = await inProcessCoordinator(t);
  const bad = await cli(c, ["hosts", "label", "host-a", "tier"]);
  t.is(bad.exitCode, 64);
  t.regex(bad.stderr, /"tier" is neither key=value \(set a label\) nor key- \(remove one\)/);
  const unknown = await cli(c, ["hosts", "label", "nobody", "tier=web"]);
  t.is(unknown.exitCode, 65, "refused: an unknown host (ERR_NOT_FOUND)");
  t.regex(unknown.stderr, /no host "nobody" is enrolled/);
});

test("an enrolled host gets no artifact it was sent no command for", async (t) => {
  const c = await inProcessCoordinator(t);
  const archive = randomBytes(4096);
  const sha256 = createHash("sha256").update(archive).digest("hex");
  const upload = await fetch(`${c.coordinator.url}/v1/artifacts/${sha256}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${c.adminToken}`, "content-type": "application/octet-stream" },
    body: archive,
  });
  t.true(upload.ok, `upload: ${upload.status}`);
  const { agent, outcome } = await session(c, { name: "host-c", key: newKey(), token: await enrollmentToken(c), labels: { role: "other" } });
  t.teardown(() => agent.close());
  t.truthy(outcome.welcome);
  // The attack: ask for another app's release by its hash.
  agent.sendEnvelope({ artifactRequest: { requestId: "1", sha256, offset: 0, length: 4096 } });
  const chunk = (await agent.next("artifactChunk")).artifactChunk as cutover.v1.ArtifactChunk;
  t.is(chunk.data?.length ?? 0, 0, "no byte of the artifact");
  t.is(chunk.error, `this host was sent no command for artifact ${sha256}`);
  await c.waitForLog(/refused an artifact to a host that was sent no command for it/);
});

test("what the coordinator signs names the host and the session it is for", async (t) => {
  const c = await inProcessCoordinator(t);
  const key = newKey();
  const { agent, outcome } = await session(c, { name: "host-d", key, token: await enrollmentToken(c) });
  t.teardown(() => agent.close());
  const welcome = outcome.welcome as cutover.v1.Welcome;
  const challenge = agent.received.find((e) => e.body === "challenge")!.challenge as cutover.v1.Challenge;
  agent.answerPings();
  const pinged = c.api("POST", "/v1/hosts/ping", { body: { hosts: ["host-d"] } });
  const outer = (await agent.next("command")).command as cutover.v1.Command;
  const inner = v1.Command.decode(outer.signed);
  t.is(inner.hostId, welcome.hostId);
  t.deepEqual(Buffer.from(inner.sessionNonce), Buffer.from(challenge.nonce));
  t.true(Number(inner.sequence) > 0);
  t.true(((await pinged).body as { ok: boolean }[])[0]!.ok);
});

test("a removed host is refused at once and for good, and leaves every selector", async (t) => {
  const c = await inProcessCoordinator(t);
  const key = newKey();
  const { agent } = await session(c, { name: "host-e", key, token: await enrollmentToken(c), labels: { role: "geoip" } });
  const removed = await cli(c, ["hosts", "remove", "host-e"]);
  t.is(removed.exitCode, 0, removed.stderr);
  t.regex(removed.stdout, /removed host-e: its key is refused from now on/);
  const refusal = (await agent.next("refusal")).refusal as cutover.v1.Refusal;
  t.is(refusal.code, RefusalCode.HostRemoved);
  t.true(refusal.permanent);
  await agent.closed;

  const again = await session(c, { name: "host-e", key, labels: { role: "geoip" } });
  t.teardown(() => again.agent.close());
  const refused = again.outcome.refusal as cutover.v1.Refusal;
  t.is(refused?.code, RefusalCode.HostRemoved);
  t.regex(refused.message, /removed from the fleet by admin at .*; to join again, clear the agent's state dir and enroll with a new token/);
  t.is(await hostNamed(c, "host-e"), undefined, "not listed");
  const audit = (await c.api("GET", "/v1/audit")).body as { action: string; actor: string }[];
  t.true(audit.some((e) => e.action === "POST /v1/hosts/host-e/remove" && e.actor === "admin"));

  // The name is free again for a machine enrolled afresh.
  const fresh = await session(c, { name: "host-e", key: newKey(), token: await enrollmentToken(c), labels: { role: "geoip" } });
  t.teardown(() => fresh.agent.close());
  t.truthy(fresh.outcome.welcome);
});
