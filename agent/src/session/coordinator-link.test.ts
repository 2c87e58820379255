import test, { type ExecutionContext } from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@cutover/log";
import { CloseCode, FOLLOWS_LEADER, RefusalCode } from "@cutover/protocol";
import { loadOrCreateIdentity } from "../identity.js";
import { COORDINATOR_FILE, CommandVerifier } from "./command-verifier.js";
import { CoordinatorLink } from "./coordinator-link.js";
import { CoordinatorUrls, MEMBERS_FILE } from "./coordinator-urls.js";
import { FleetKey, TestCoordinator, type Answer } from "./test-coordinator.js";
import { welcomeHandler } from "./welcome.js";

function stateDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-link-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function coordinator(t: ExecutionContext, key: FleetKey, answer: Answer): Promise<TestCoordinator> {
  const c = await TestCoordinator.start(key, answer);
  t.teardown(() => c.close());
  return c;
}

const notLeader = (leaderUrl: string): Answer => ({ refusal: { code: RefusalCode.NotLeader, message: "this coordinator does not lead the fleet", permanent: false, leaderUrl } });

/**
 * A link wired as startAgent wires it (the verifier, the coordinator list, the Welcome handler;
 * the key the enrollment token names is the fleet's), whose commands are opened by the verifier:
 * `verdict(id)` resolves with what it said ("ok" or the refusal code). `events` is the order of
 * Welcomes taken or refused and of sessions ended.
 */
async function startLink(t: ExecutionContext, urls: string[], key: FleetKey, dir = stateDir(t)) {
  // A command the link never hands over fails the test here, not at ava's 10 minutes.
  t.timeout(30_000);
  const logs: string[] = [];
  const log = createLogger("agent", { level: "debug", write: (line) => logs.push(line) });
  const verifier = new CommandVerifier(dir);
  const coordinators = new CoordinatorUrls({ configured: urls, rules: { allowPlain: false, fingerprintFlag: false }, stateDir: dir, log });
  const onWelcome = welcomeHandler({ verifier, coordinators, enrollmentKeyId: key.keyId, log, enrolled: async () => {} });
  const events: string[] = [];
  const verdicts = new Map<string, Promise<string>>();
  const waiting = new Map<string, (opened: Promise<string>) => void>();
  const link = new CoordinatorLink({
    coordinators,
    identity: await loadOrCreateIdentity(dir, "web-1"),
    address: "127.0.0.1",
    labels: {},
    capabilities: ["ping", FOLLOWS_LEADER],
    agentVersion: "test",
    reconnectBaseMs: 1,
    reconnectCapMs: 20,
    handshakeTimeoutMs: 5_000,
    log,
    report: async () => ({ resources: { memTotalBytes: 1 }, instances: [] }),
    onWelcome: async (welcome, session) => {
      const accepted = await onWelcome(welcome, session);
      events.push(`welcome epoch ${welcome.epoch} ${accepted ? "taken" : "refused"}`);
      return accepted;
    },
    onCommand: async (command, _reply, nonce) => {
      const opened = verifier.open(command, nonce).then((o) => (o.ok ? "ok" : o.code));
      verdicts.set(command.commandId, opened);
      waiting.get(command.commandId)?.(opened);
    },
    onDisconnect: () => events.push("session ended"),
    onPermanentRefusal: () => events.push("stopped"),
  });
  link.start();
  t.teardown(() => link.stop());
  /** What the verifier said of command `id`, once the link has handed it over. */
  const verdict = (id: string): Promise<string> => verdicts.get(id) ?? new Promise((resolve) => waiting.set(id, (opened) => void opened.then(resolve)));
  return { link, coordinators, logs, events, verdicts, verdict, dir };
}

test("a Welcome under a lower epoch than one verified before is refused: that session closes, the next coordinator is tried, and none of its commands runs", async (t) => {
  const key = new FleetKey();
  const a = await coordinator(t, key, { welcome: { epoch: 2 } });
  const b = await coordinator(t, key, { welcome: { epoch: 1 } });
  const agent = await startLink(t, [a.url, b.url], key);
  const first = await a.answered(0);
  first.send(key.ping(first, "epoch-2"));
  t.is(await agent.verdict("epoch-2"), "ok");
  // A closes the session (restarted, say): the link goes on to B, an old leader still under epoch 1, which commands at once.
  first.socket.terminate();
  const stale = await b.answered(0);
  stale.send(key.ping(stale, "epoch-1"));
  t.deepEqual(await stale.closed, { code: CloseCode.AuthRefused, reason: "coordinator not trusted" });
  // The round over, A again, under epoch 2.
  const again = await a.answered(1);
  again.send(key.ping(again, "epoch-2-again"));
  t.is(await agent.verdict("epoch-2-again"), "ok");
  t.not(await (agent.verdicts.get("epoch-1") ?? "never handed over"), "ok", "the old leader's command is not acted on");
  t.deepEqual(agent.events, ["welcome epoch 2 taken", "session ended", "welcome epoch 1 refused", "session ended", "welcome epoch 2 taken"]);
  t.true(agent.logs.some((line) => line.includes("refusing the session") && line.includes("leads under epoch 1, but a Welcome under epoch 2 verified before")));
  const file = join(agent.dir, COORDINATOR_FILE);
  t.is((JSON.parse(readFileSync(file, "utf8")) as { epoch: number }).epoch, 2, "the highest epoch is kept in the state dir");
  t.is(statSync(file).mode & 0o777, 0o600);
});

test("the highest epoch survives a restart: a new link refuses the old leader it meets first", async (t) => {
  const key = new FleetKey();
  const leader = await coordinator(t, key, { welcome: { epoch: 5 } });
  const dir = stateDir(t);
  const before = await startLink(t, [leader.url], key, dir);
  const first = await leader.answered(0);
  first.send(key.ping(first, "p"));
  t.is(await before.verdict("p"), "ok");
  before.link.stop();
  const old = await coordinator(t, key, { welcome: { epoch: 4 } });
  const after = await startLink(t, [old.url, leader.url], key, dir);
  t.deepEqual(await (await old.answered(0)).closed, { code: CloseCode.AuthRefused, reason: "coordinator not trusted" });
  const next = await leader.answered(1);
  next.send(key.ping(next, "q"));
  t.is(await after.verdict("q"), "ok");
  t.deepEqual(after.events, ["welcome epoch 4 refused", "session ended", "welcome epoch 5 taken"]);
});

test("a session under a newer epoch starts only once the older one has ended, and a command signed for the older one is refused on it", async (t) => {
  const key = new FleetKey();
  const a = await coordinator(t, key, { welcome: { epoch: 1 } });
  const b = await coordinator(t, key, { welcome: { epoch: 2 } });
  const agent = await startLink(t, [a.url, b.url], key);
  const old = await a.answered(0);
  old.send(key.ping(old, "under-1"));
  t.is(await agent.verdict("under-1"), "ok");
  t.is(b.sessions.length, 0, "no second connection while a session is up");
  // A deposed leader closes its sessions: only then does the agent dial B.
  old.socket.terminate();
  const current = await b.answered(0);
  t.true(old.isClosed, "the epoch-1 session had ended when the epoch-2 one began");
  current.send(key.ping(old, "held-from-1"));
  current.send(key.ping(current, "under-2"));
  t.is(await agent.verdict("held-from-1"), "ERR_COMMAND_WRONG_SESSION");
  t.is(await agent.verdict("under-2"), "ok");
  t.deepEqual(agent.events, ["welcome epoch 1 taken", "session ended", "welcome epoch 2 taken"]);
});

test("NOT_LEADER naming a URL the agent does not trust is not followed: the next configured coordinator is tried", async (t) => {
  const key = new FleetKey();
  // Holds the fleet's key even: what the agent goes by is whether it trusts the URL.
  const elsewhere = await coordinator(t, key, { welcome: { epoch: 1 } });
  const follower = await coordinator(t, key, notLeader(elsewhere.url));
  const next = await coordinator(t, key, { welcome: { epoch: 1 } });
  const agent = await startLink(t, [follower.url, next.url], key);
  const session = await next.answered(0);
  session.send(key.ping(session, "p"));
  t.is(await agent.verdict("p"), "ok");
  t.is(elsewhere.sessions.length, 0, "the URL an unsigned Refusal named was never dialled");
  t.is(follower.sessions.length, 1);
  t.true(agent.logs.some((line) => line.includes("names no leader this agent trusts") && line.includes(elsewhere.url)));
  t.deepEqual(agent.coordinators.all(), [follower.url, next.url], "a Refusal adds no URL");
});

test("NOT_LEADER naming a configured coordinator is followed there at once, past the ones between", async (t) => {
  const key = new FleetKey();
  const leader = await coordinator(t, key, { welcome: { epoch: 1 } });
  const follower = await coordinator(t, key, notLeader(leader.url));
  const between = await coordinator(t, key, { welcome: { epoch: 1 } });
  const agent = await startLink(t, [follower.url, between.url, leader.url], key);
  const session = await leader.answered(0);
  session.send(key.ping(session, "p"));
  t.is(await agent.verdict("p"), "ok");
  t.is(between.sessions.length, 0, "the link went to the leader the follower named, not to the next in the list");
  t.true(agent.logs.some((line) => line.includes("going to the leader it names") && line.includes(leader.url)));
});

test("members a verified Welcome lists are kept in the state dir: after a restart the agent follows a NOT_LEADER to one it was never configured with", async (t) => {
  const key = new FleetKey();
  const leader = await coordinator(t, key, { welcome: { epoch: 3 } });
  const first = await coordinator(t, key, { welcome: { epoch: 2, members: [] } });
  first.answer = { welcome: { epoch: 2, members: [first.url, leader.url] } };
  const dir = stateDir(t);
  const before = await startLink(t, [first.url], key, dir);
  const session = await first.answered(0);
  session.send(key.ping(session, "p"));
  t.is(await before.verdict("p"), "ok");
  t.deepEqual(before.coordinators.all(), [first.url, leader.url]);
  const file = join(dir, MEMBERS_FILE);
  t.deepEqual(JSON.parse(readFileSync(file, "utf8")), { members: [first.url, leader.url] });
  t.is(statSync(file).mode & 0o777, 0o600);
  before.link.stop();
  // The takeover: the first coordinator now follows and names the leader, which only members.json lists.
  first.answer = notLeader(leader.url);
  const after = await startLink(t, [first.url], key, dir);
  const led = await leader.answered(0);
  led.send(key.ping(led, "q"));
  t.is(await after.verdict("q"), "ok");
  t.deepEqual(after.events, ["session ended", "welcome epoch 3 taken"]);
});

test("the members of a Welcome that does not verify are not learned", async (t) => {
  const key = new FleetKey();
  const elsewhere = await coordinator(t, key, { welcome: { epoch: 1 } });
  const impostor = await coordinator(t, key, { welcome: { epoch: 9, members: [elsewhere.url], signedBy: new FleetKey() } });
  const agent = await startLink(t, [impostor.url], key);
  t.deepEqual(await (await impostor.answered(0)).closed, { code: CloseCode.AuthRefused, reason: "coordinator not trusted" });
  t.deepEqual(agent.coordinators.all(), [impostor.url]);
  t.false(existsSync(join(agent.dir, MEMBERS_FILE)));
  t.false(existsSync(join(agent.dir, COORDINATOR_FILE)), "nothing pinned, no epoch kept");
});
