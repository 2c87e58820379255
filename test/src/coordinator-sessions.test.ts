import test from "ava";
import { once } from "node:events";
import WebSocket from "ws";
import { createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, verify } from "node:crypto";
import { CloseCode, COMMAND_MAC, commandKeyInfo, openSignedCommand, RefusalCode, welcomeProofBytes, type cutover } from "@cutover/protocol";
import { inProcessCoordinator } from "./harness/in-process.js";
import { newKey, RawAgent } from "./harness/raw-agent.js";

async function enrollmentToken(api: Awaited<ReturnType<typeof inProcessCoordinator>>["api"]): Promise<string> {
  const { status, body } = await api("POST", "/v1/tokens/enrollment", { body: {} });
  if (status !== 201) throw new Error(`token create: ${status}`);
  return body.token as string;
}

test("an agent enrolls with a one-time token, then authenticates by key alone", async (t) => {
  const { coordinator, api } = await inProcessCoordinator(t);
  const key = newKey();
  const token = await enrollmentToken(api);

  const first = await RawAgent.connect(coordinator.url);
  const welcome = (await first.handshake({ name: "web-1", key, token, labels: { role: "geoip" } })).welcome as cutover.v1.Welcome;
  t.truthy(welcome, "first contact is welcomed");
  t.true(welcome.enrolled);
  t.true(welcome.heartbeatIntervalMs > 0);
  first.close();
  await first.closed;

  const second = await RawAgent.connect(coordinator.url);
  const again = (await second.handshake({ name: "web-1", key, labels: { role: "geoip" } })).welcome as cutover.v1.Welcome;
  t.false(again.enrolled, "no re-enrollment");
  t.is(again.hostId, welcome.hostId);

  const hosts = await api("GET", "/v1/hosts");
  t.is(hosts.status, 200);
  t.deepEqual(hosts.body.map((h: { name: string; state: string; labels: object }) => [h.name, h.state, h.labels]), [["web-1", "online", { role: "geoip" }]]);
  second.close();
});

const refusals: [string, (ctx: { api: any; url: string; db: any }) => Promise<{ name: string; key: ReturnType<typeof newKey>; token?: string; signWith?: ReturnType<typeof newKey> }>, string][] = [
  [
    "a reused enrollment token",
    async ({ api, url }) => {
      const token = await enrollmentToken(api);
      const first = await RawAgent.connect(url);
      await first.handshake({ name: "first", key: newKey(), token });
      first.close();
      return { name: "second", key: newKey(), token };
    },
    RefusalCode.EnrollTokenUsed,
  ],
  [
    "an expired enrollment token",
    async ({ api, db }) => {
      const token = await enrollmentToken(api);
      db.prepare("UPDATE enrollment_tokens SET expires_at = ?").run(Date.now() - 1);
      return { name: "late", key: newKey(), token };
    },
    RefusalCode.EnrollTokenExpired,
  ],
  ["a token the coordinator never issued", async () => ({ name: "forged", key: newKey(), token: "cte_not-a-real-token" }), RefusalCode.EnrollTokenUnknown],
  ["an unknown key without a token", async () => ({ name: "stranger", key: newKey() }), RefusalCode.UnknownAgent],
  [
    "an enrolled name presenting another key",
    async ({ api, url }) => {
      const first = await RawAgent.connect(url);
      await first.handshake({ name: "web-1", key: newKey(), token: await enrollmentToken(api) });
      first.close();
      return { name: "web-1", key: newKey() };
    },
    RefusalCode.KeyMismatch,
  ],
  [
    "a signature made with another key",
    async ({ api }) => ({ name: "impostor", key: newKey(), signWith: newKey(), token: await enrollmentToken(api) }),
    RefusalCode.BadSignature,
  ],
];

for (const [what, setup, code] of refusals) {
  test(`refuses ${what} with ${code} and logs why`, async (t) => {
    const { coordinator, api, logs } = await inProcessCoordinator(t);
    const hello = await setup({ api, url: coordinator.url, db: coordinator.db });
    const agent = await RawAgent.connect(coordinator.url);
    const outcome = await agent.handshake(hello);
    t.is(outcome.body, "refusal");
    t.is(outcome.refusal!.code, code);
    t.truthy(outcome.refusal!.message);
    const closed = await agent.closed;
    t.is(closed.code, CloseCode.AuthRefused);
    t.true(logs.some((l) => l.includes("refused agent") && l.includes(`code=${code}`)), "the coordinator logs the refusal");
    const hosts = await api("GET", "/v1/hosts");
    t.false(hosts.body.some((h: { name: string; state: string }) => h.name === hello.name && h.state === "online"));
  });
}

test("a refused enrollment does not spend the token", async (t) => {
  const { coordinator, api } = await inProcessCoordinator(t);
  const token = await enrollmentToken(api);
  const impostor = await RawAgent.connect(coordinator.url);
  t.is((await impostor.handshake({ name: "x", key: newKey(), signWith: newKey(), token })).refusal!.code, RefusalCode.BadSignature);
  const honest = await RawAgent.connect(coordinator.url);
  t.is((await honest.handshake({ name: "x", key: newKey(), token })).body, "welcome");
  honest.close();
});

test("API calls need a valid token with a sufficient role", async (t) => {
  const { api } = await inProcessCoordinator(t);
  const none = await api("GET", "/v1/hosts", { token: null });
  t.is(none.status, 401);
  t.is(none.body.error.code, "ERR_UNAUTHENTICATED");
  const forged = await api("GET", "/v1/hosts", { token: "cta_forged" });
  t.is(forged.status, 401);

  const reader = await api("POST", "/v1/tokens/api", { body: { role: "read", name: "dashboard" } });
  t.is(reader.status, 201);
  t.is((await api("GET", "/v1/hosts", { token: reader.body.token })).status, 200);
  const escalate = await api("POST", "/v1/tokens/enrollment", { token: reader.body.token, body: {} });
  t.is(escalate.status, 403);
  t.is(escalate.body.error.code, "ERR_FORBIDDEN");
  t.regex(escalate.body.error.message, /role "admin"/);

  const deployer = await api("POST", "/v1/tokens/api", { body: { role: "deploy", name: "ci" } });
  t.is((await api("POST", "/v1/hosts/ping", { token: deployer.body.token, body: {} })).status, 200);
  t.is((await api("POST", "/v1/tokens/api", { token: deployer.body.token, body: { role: "admin" } })).status, 403);
  t.is((await api("POST", "/v1/tokens/api", { body: { role: "root" } })).status, 400);
});

test("a command reaches an agent and its result comes back; an unknown command id result is ignored", async (t) => {
  const { coordinator, api, logs } = await inProcessCoordinator(t);
  const agent = await RawAgent.connect(coordinator.url);
  await agent.handshake({ name: "web-1", key: newKey(), token: await enrollmentToken(api) });
  // Answer pings like an agent would, after first sending a result nobody asked for.
  agent.sendEnvelope({ commandResult: { commandId: "never-sent", status: 1 } });
  agent.answerPings();
  const ping = await api("POST", "/v1/hosts/ping", { body: {} });
  t.deepEqual(ping.body.map((r: { name: string; ok: boolean; status: string }) => [r.name, r.ok, r.status]), [["web-1", true, "OK"]]);
  t.true(logs.some((l) => l.includes("unknown or finished command") && l.includes("never-sent")));
  agent.close();
});

const ed25519 = (raw: Uint8Array) => createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });
const x25519 = (raw: Uint8Array) => createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(raw).toString("base64url") }, format: "jwk" });

test("an agent that announces commands.mac gets its commands under a session key its signed Welcome agreed; one that does not gets them signed", async (t) => {
  const { coordinator, api } = await inProcessCoordinator(t);
  // The keyed agent: a fresh X25519 share in Hello.
  const ours = generateKeyPairSync("x25519");
  const share = Buffer.from((ours.publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
  const keyed = await RawAgent.connect(coordinator.url);
  const key = newKey();
  const welcome = (await keyed.handshake({ name: "web-1", key, token: await enrollmentToken(api), capabilities: [COMMAND_MAC], sessionKeyShare: share })).welcome as cutover.v1.Welcome;
  const nonce = (keyed.received.find((e) => e.body === "challenge")!.challenge as cutover.v1.Challenge).nonce;
  t.is(welcome.sessionKeyShare.length, 32, "the Welcome answers with the coordinator's share");
  const proof = welcomeProofBytes({ nonce, hostId: welcome.hostId, agentPublicKey: key.publicKey, shares: { agent: share, coordinator: welcome.sessionKeyShare } });
  t.true(verify(null, proof, ed25519(welcome.coordinatorPublicKey), welcome.signature), "the Welcome's signature covers both shares");
  const commandKey = Buffer.from(hkdfSync("sha256", diffieHellman({ privateKey: ours.privateKey, publicKey: x25519(welcome.sessionKeyShare) }), nonce, commandKeyInfo(welcome.hostId), 32));
  keyed.answerPings();
  // The agent that says nothing of it (an older one).
  const legacy = await RawAgent.connect(coordinator.url);
  const legacyWelcome = (await legacy.handshake({ name: "web-2", key: newKey(), token: await enrollmentToken(api) })).welcome as cutover.v1.Welcome;
  t.is(legacyWelcome.sessionKeyShare.length, 0);
  legacy.answerPings();

  for (let i = 0; i < 2; i++) {
    const ping = await api("POST", "/v1/hosts/ping", { body: {} });
    t.deepEqual(ping.body.map((r: { name: string; ok: boolean }) => [r.name, r.ok]).sort(), [["web-1", true], ["web-2", true]]);
  }
  const commands = (agent: RawAgent) => agent.received.filter((e) => e.body === "command").map((e) => e.command as cutover.v1.Command);
  const macd = commands(keyed);
  t.is(macd.length, 2);
  for (const [i, command] of macd.entries()) {
    t.is(command.signature.length, 0, "no signature per command");
    t.deepEqual(Buffer.from(command.mac), createHmac("sha256", commandKey).update(command.signed).digest(), "HMAC-SHA256 of the signed bytes under the session key");
    const inner = openSignedCommand(command);
    t.is(Number(inner.sequence), i + 1, "the session's own sequence, from 1");
    t.is(inner.hostId, welcome.hostId);
    t.deepEqual(Buffer.from(inner.sessionNonce), Buffer.from(nonce));
  }
  const legacyNonce = (legacy.received.find((e) => e.body === "challenge")!.challenge as cutover.v1.Challenge).nonce;
  for (const command of commands(legacy)) {
    t.is(command.mac.length, 0);
    t.true(verify(null, command.signed, ed25519(legacyWelcome.coordinatorPublicKey), command.signature), "signed by the coordinator's key");
    t.deepEqual(Buffer.from(openSignedCommand(command).sessionNonce), Buffer.from(legacyNonce));
  }
  keyed.close();
  legacy.close();
});

test("the audit trail records who changed what, refused calls included, every host enrolled and every command sent", async (t) => {
  const { coordinator, api } = await inProcessCoordinator(t);
  const reader = await api("POST", "/v1/tokens/api", { body: { role: "read", name: "dashboard" } });
  await api("POST", "/v1/tokens/enrollment", { token: reader.body.token, body: {} });
  await api("POST", "/v1/tokens/enrollment", { token: null, body: {} });
  const agent = await RawAgent.connect(coordinator.url);
  await agent.handshake({ name: "web-1", key: newKey(), token: (await api("POST", "/v1/tokens/enrollment", { body: { ttl: "10m" } })).body.token });
  agent.answerPings();
  await api("POST", "/v1/hosts/ping", { body: {} });

  const audit = await api("GET", "/v1/audit?limit=20");
  t.is(audit.status, 200);
  const rows = (audit.body as { actor: string; action: string; target: string; outcome: string; detail: string }[]).map((e) => [e.actor, e.action, e.target, e.outcome]);
  t.deepEqual(rows, [
    ["admin", "POST /v1/hosts/ping", "every online host", "200"],
    ["coordinator", "command ping", "web-1", "OK"],
    ["host web-1", "enroll", "web-1", "enrolled"],
    ["admin", "POST /v1/tokens/enrollment", "enrollment token", "201"],
    ["(no valid token)", "POST /v1/tokens/enrollment", "enrollment token", "401"],
    ["dashboard", "POST /v1/tokens/enrollment", "enrollment token", "403"],
    ["admin", "POST /v1/tokens/api", "api token dashboard", "201"],
  ]);
  t.regex((audit.body as { detail: string }[]).at(-1)!.detail, /role=read name=dashboard/);
  t.is((await api("GET", "/v1/audit", { token: reader.body.token })).status, 403, "the trail is for admins");
  agent.close();
});

test("upgrades beyond the handshakes in progress wait their turn in arrival order instead of being refused; only a full queue answers 503", async (t) => {
  const { coordinator, api, logs, waitForLog } = await inProcessCoordinator(t, { maxPendingHandshakes: 1, maxQueuedHandshakes: 2 });
  const url = `${coordinator.url.replace(/^http/, "ws")}/v1/agent`;
  const holding = await RawAgent.connect(coordinator.url);
  await holding.next("challenge");
  const queued = async () => {
    const from = logs.length;
    const socket = new WebSocket(url, { perMessageDeflate: false });
    socket.on("error", () => {});
    await waitForLog(/waiting for a handshake slot/, from);
    return socket;
  };
  const first = await queued();
  const second = await queued();
  const third = new WebSocket(url, { perMessageDeflate: false });
  third.on("error", () => {});
  const [, response] = (await once(third, "unexpected-response")) as [unknown, { statusCode: number }];
  t.is(response.statusCode, 503, "past the queue's bound");
  third.terminate();

  // The agent in progress finishes its handshake: the oldest waiting upgrade goes next, the other still waits.
  await holding.handshake({ name: "web-1", key: newKey(), token: await enrollmentToken(api) });
  await once(first, "open");
  t.is(second.readyState, WebSocket.CONNECTING);
  // The first one gives up: the slot it held goes to the next in line.
  first.terminate();
  await once(second, "open");
  second.terminate();
  holding.close();
});
