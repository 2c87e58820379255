import test from "ava";
import { CloseCode, RefusalCode, type cutover } from "@cutover/protocol";
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
