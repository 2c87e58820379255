import test from "ava";
import { createPublicKey, verify } from "node:crypto";
import { CloseCode, FOLLOWS_LEADER, RefusalCode, v1, welcomeProofBytes, type cutover } from "@cutover/protocol";
import { inProcessCoordinator } from "./harness/in-process.js";
import { newKey, RawAgent } from "./harness/raw-agent.js";

const MEMBERS = ["ws://127.0.0.2:7400/v1/agent", "ws://127.0.0.3:7400/v1/agent"];
const ed25519 = (raw: Uint8Array) => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
const nonceOf = (agent: RawAgent) => (agent.received.find((e) => e.body === "challenge")!.challenge as cutover.v1.Challenge).nonce;

async function enrollmentToken(api: Awaited<ReturnType<typeof inProcessCoordinator>>["api"]): Promise<string> {
  const { status, body } = await api("POST", "/v1/tokens/enrollment", { body: {} });
  if (status !== 201) throw new Error(`token create: ${status}`);
  return body.token as string;
}

test("a coordinator that does not lead refuses agents with NOT_LEADER, not permanent, naming the leader, and enrolls nobody", async (t) => {
  const { coordinator, api, logs } = await inProcessCoordinator(t);
  const token = await enrollmentToken(api);
  let leader: string | undefined = MEMBERS[1];
  coordinator.fleet.leadership = { isLeader: () => false, epoch: () => 4, members: () => MEMBERS, leaderAgentUrl: () => leader };
  const agent = await RawAgent.connect(coordinator.url);
  const outcome = await agent.handshake({ name: "web-1", key: newKey(), token, capabilities: [FOLLOWS_LEADER] });
  const { code, permanent, leaderUrl, message } = outcome.refusal!;
  t.deepEqual({ code, permanent, leaderUrl }, { code: RefusalCode.NotLeader, permanent: false, leaderUrl: MEMBERS[1] });
  t.is(message, `this coordinator does not lead the fleet: the leader is ${MEMBERS[1]}`);
  t.is((await agent.closed).code, CloseCode.AuthRefused);
  t.true(logs.some((line) => line.includes("refused agent") && line.includes("code=NOT_LEADER")));

  // No leader known (a takeover in progress): refused all the same, with no URL to follow.
  leader = undefined;
  const early = await RawAgent.connect(coordinator.url);
  const none = (await early.handshake({ name: "web-1", key: newKey(), token })).refusal!;
  t.deepEqual([none.code, none.leaderUrl, none.message], [RefusalCode.NotLeader, "", "this coordinator does not lead the fleet: no coordinator leads right now; try again shortly"]);

  // Once it leads, the same token enrolls: the follower neither spent it nor recorded a host.
  coordinator.fleet.leadership = { isLeader: () => true, epoch: () => 5, members: () => MEMBERS, leaderAgentUrl: () => undefined };
  t.deepEqual((await api("GET", "/v1/hosts")).body, []);
  const later = await RawAgent.connect(coordinator.url);
  t.is((await later.handshake({ name: "web-1", key: newKey(), token })).body, "welcome");
  later.close();
});

test("the leader's Welcome carries its epoch and members under the signature to an agent that announces session.epoch; an older agent gets neither and the proof it always verified", async (t) => {
  const { coordinator, api } = await inProcessCoordinator(t);
  coordinator.fleet.leadership = { isLeader: () => true, epoch: () => 7, members: () => MEMBERS, leaderAgentUrl: () => undefined };
  const key = newKey();
  const current = await RawAgent.connect(coordinator.url);
  const welcome = (await current.handshake({ name: "web-1", key, token: await enrollmentToken(api), capabilities: [FOLLOWS_LEADER] })).welcome as cutover.v1.Welcome;
  t.deepEqual([welcome.epoch, welcome.members], [7, MEMBERS]);
  const proof = welcomeProofBytes({ nonce: nonceOf(current), hostId: welcome.hostId, agentPublicKey: key.publicKey, epoch: 7, members: MEMBERS });
  t.true(verify(null, proof, ed25519(welcome.coordinatorPublicKey), welcome.signature), "the signature covers the epoch and the members");
  const without = welcomeProofBytes({ nonce: nonceOf(current), hostId: welcome.hostId, agentPublicKey: key.publicKey });
  t.false(verify(null, without, ed25519(welcome.coordinatorPublicKey), welcome.signature), "a Welcome whose epoch was stripped on the way does not verify");

  const oldKey = newKey();
  const older = await RawAgent.connect(coordinator.url);
  const legacy = (await older.handshake({ name: "web-2", key: oldKey, token: await enrollmentToken(api) })).welcome as cutover.v1.Welcome;
  t.deepEqual([legacy.epoch, legacy.members], [0, []]);
  // What an agent from before the epoch encodes, with the generated code of its time: four fields.
  const before = v1.WelcomeProof.encode({ context: "cutover.v1.welcome", nonce: nonceOf(older), hostId: legacy.hostId, agentPublicKey: oldKey.publicKey }).finish();
  t.true(verify(null, before, ed25519(legacy.coordinatorPublicKey), legacy.signature), "an older agent verifies the Welcome as it always did");
  current.close();
  older.close();
});
