import test from "ava";
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, formatEnrollmentToken, signedCommandBytes, v1, welcomeProofBytes, type cutover } from "@cutover/protocol";
import { AGENT_BIN, spawnWatched, tempDir } from "./harness/processes.js";

const Status = v1.CommandResult.Status;

interface Key {
  privateKey: KeyObject;
  publicKey: Uint8Array;
}
function newKey(): Key {
  const { privateKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: Buffer.from((privateKey.export({ format: "jwk" }) as { x: string }).x, "base64url") };
}

/** An enrollment token as `cutover token create` makes one: it names the key of the coordinator that issued it. */
function tokenFor(key: Key): string {
  return formatEnrollmentToken("any", createHash("sha256").update(key.publicKey).digest("base64url"));
}

const HOST_ID = "h1";

/**
 * A stand-in coordinator with its own key: it welcomes any agent (a Welcome
 * signed as the real coordinator signs it, unless `welcome` says otherwise)
 * and sends exactly the commands a test asks for.
 */
async function fakeCoordinator(
  t: { teardown(fn: () => void): void },
  key: Key,
  welcome: { signWith?: Key; hostId?: string } = {},
) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/v1/agent" });
  await once(wss, "listening");
  t.teardown(() => wss.close());
  const results: cutover.v1.CommandResult[] = [];
  let waiting: ((r: cutover.v1.CommandResult) => void) | undefined;
  let sessionResolve!: (ws: WebSocket) => void;
  const session = new Promise<WebSocket>((resolve) => (sessionResolve = resolve));
  const nonces: Uint8Array[] = [];
  wss.on("connection", (ws) => {
    const nonce = randomBytes(32);
    nonces.push(nonce);
    ws.send(encodeEnvelope({ challenge: { nonce, protocolVersion: 1 } }));
    ws.on("message", (data) => {
      const envelope = decodeEnvelope(data as Buffer);
      if (envelope.body === "hello") {
        const hostId = welcome.hostId ?? HOST_ID;
        const proof = welcomeProofBytes({ nonce, hostId, agentPublicKey: envelope.hello!.publicKey! });
        const signature = sign(null, proof, (welcome.signWith ?? key).privateKey);
        ws.send(encodeEnvelope({ welcome: { hostId, heartbeatIntervalMs: 1000, protocolVersion: 1, enrolled: true, coordinatorPublicKey: key.publicKey, signature } }));
        sessionResolve(ws);
      } else if (envelope.body === "commandResult") {
        results.push(envelope.commandResult as cutover.v1.CommandResult);
        waiting?.(envelope.commandResult as cutover.v1.CommandResult);
      }
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    session,
    /** Challenge nonces of every session so far, oldest first. */
    nonces,
    /** Sends one frame and resolves with the agent's answer to it. */
    async send(command: cutover.v1.Command.$Properties): Promise<cutover.v1.CommandResult> {
      const ws = await session;
      const answered = new Promise<cutover.v1.CommandResult>((resolve) => (waiting = resolve));
      ws.send(encodeEnvelope({ command }));
      return answered;
    },
  };
}

interface SignedFor {
  hostId: string;
  sessionNonce: Uint8Array;
}

function signedPing(key: Key, id: string, sequence: number, target: SignedFor, deadlineUnixMs = Date.now() + 10_000): cutover.v1.Command.$Properties {
  const inner = { commandId: id, deadlineUnixMs, sequence, ping: { payload: id }, ...target };
  const signed = signedCommandBytes(inner);
  return { commandId: id, deadlineUnixMs, signed, signature: sign(null, signed, key.privateKey) };
}

test("the agent acts only on commands signed by the coordinator it pinned, each with a new sequence: replayed, reordered, forged, unsigned and expired ones are refused and logged", async (t) => {
  const key = newKey();
  const coordinator = await fakeCoordinator(t, key);
  const stateDir = tempDir(t);
  const agent = spawnWatched("agent", AGENT_BIN, ["--coordinator", coordinator.url, "--token", tokenFor(key), "--state-dir", stateDir, "--name", "web-1", "--address", "127.0.0.61", "--nginx", "managed", "--config", "/dev/null"]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/to=online/);
  const here: SignedFor = { hostId: HOST_ID, sessionNonce: coordinator.nonces[0]! };

  const valid = signedPing(key, "c1", 1_000, here);
  const ok = await coordinator.send(valid);
  t.is(ok.status, Status.OK);
  t.is(ok.pong?.payload, "c1");

  const cases: [string, cutover.v1.Command.$Properties, number, string][] = [
    ["the same frame again (replay)", valid, Status.REJECTED, "ERR_COMMAND_REPLAYED"],
    ["an older sequence under a new id (reordered)", signedPing(key, "c2", 999, here), Status.REJECTED, "ERR_COMMAND_REPLAYED"],
    ["a command signed by another key", signedPing(newKey(), "c3", 2_000, here), Status.REJECTED, "ERR_COMMAND_BAD_SIGNATURE"],
    ["an unsigned command", { commandId: "c4", deadlineUnixMs: Date.now() + 10_000, sequence: 3_000, ping: { payload: "c4" } }, Status.REJECTED, "ERR_COMMAND_UNSIGNED"],
    ["a command past its deadline", signedPing(key, "c5", 4_000, here, Date.now() - 1), Status.EXPIRED, "ERR_COMMAND_EXPIRED"],
    // A relay that sees two hosts' sessions moves host-2's signed command into this one.
    ["a command signed for another host", signedPing(key, "c7", 6_000, { ...here, hostId: "h2" }), Status.REJECTED, "ERR_COMMAND_WRONG_HOST"],
    ["a command signed for another session", signedPing(key, "c8", 7_000, { ...here, sessionNonce: randomBytes(32) }), Status.REJECTED, "ERR_COMMAND_WRONG_SESSION"],
  ];
  for (const [what, command, status, code] of cases) {
    const result = await coordinator.send(command);
    t.is(result.status, status, what);
    t.is(result.errorCode, code, what);
    t.falsy(result.pong, `${what}: nothing was done`);
  }
  t.true(agent.lines.some((l) => /refused a command commandId=c2 code=ERR_COMMAND_REPLAYED/.test(l)), "the agent logs the refusal");
  t.true(agent.lines.some((l) => /refused a command commandId=c3 code=ERR_COMMAND_BAD_SIGNATURE/.test(l)));
  t.is((await coordinator.send(signedPing(key, "c6", 8_000, here))).status, Status.OK, "a proper command after all that still works");
});

test("a command recorded on one session does nothing when replayed on the next, even with a fresh sequence", async (t) => {
  const key = newKey();
  const coordinator = await fakeCoordinator(t, key);
  const stateDir = tempDir(t);
  const args = ["--coordinator", coordinator.url, "--token", tokenFor(key), "--state-dir", stateDir, "--name", "web-1", "--address", "127.0.0.63", "--nginx", "managed", "--config", "/dev/null", "--max-backoff", "300ms"];
  const agent = spawnWatched("agent", AGENT_BIN, args);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/to=online/);
  const first: SignedFor = { hostId: HOST_ID, sessionNonce: coordinator.nonces[0]! };
  t.is((await coordinator.send(signedPing(key, "s1", 1_000, first))).status, Status.OK);
  const recorded = signedPing(key, "s2", 9_000, first);
  await agent.kill("SIGTERM");

  const second = await fakeCoordinator(t, key);
  const again = spawnWatched("agent", AGENT_BIN, ["--coordinator", second.url, ...args.slice(2)]);
  t.teardown(() => again.kill("SIGKILL"));
  await again.waitForLine(/to=online/);
  const replayed = await second.send(recorded);
  t.is(replayed.status, Status.REJECTED);
  t.is(replayed.errorCode, "ERR_COMMAND_WRONG_SESSION");
  t.is((await second.send(signedPing(key, "s3", 10_000, { hostId: HOST_ID, sessionNonce: second.nonces[0]! }))).status, Status.OK, "the same host takes commands signed for its new session");
});

test("an agent enrolling with a token pins only the key the token names: an impostor that answers first is never trusted", async (t) => {
  const real = newKey();
  const impostor = await fakeCoordinator(t, newKey());
  const agent = spawnWatched("agent", AGENT_BIN, [
    "--coordinator", impostor.url, "--token", tokenFor(real), "--state-dir", tempDir(t), "--name", "web-1", "--address", "127.0.0.64", "--nginx", "managed", "--config", "/dev/null", "--max-backoff", "300ms",
  ]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/not trusting this coordinator: refusing the session reason="the coordinator's key is not the one the enrollment token names/);
  t.false(agent.lines.some((l) => /to=online/.test(l)), "never online with the impostor");
});

test("an agent refuses a Welcome that is not signed by the key it presents, or names another host than the one pinned", async (t) => {
  const key = newKey();
  const forged = await fakeCoordinator(t, key, { signWith: newKey() });
  const stateDir = tempDir(t);
  const args = ["--token", tokenFor(key), "--state-dir", stateDir, "--name", "web-1", "--address", "127.0.0.65", "--nginx", "managed", "--config", "/dev/null", "--max-backoff", "300ms"];
  const agent = spawnWatched("agent", AGENT_BIN, ["--coordinator", forged.url, ...args]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/reason="the Welcome's signature does not verify/);
  await agent.kill("SIGTERM");

  const honest = await fakeCoordinator(t, key);
  const pinned = spawnWatched("agent", AGENT_BIN, ["--coordinator", honest.url, ...args]);
  t.teardown(() => pinned.kill("SIGKILL"));
  await pinned.waitForLine(/to=online/);
  await pinned.kill("SIGTERM");

  const renamer = await fakeCoordinator(t, key, { hostId: "h9" });
  const third = spawnWatched("agent", AGENT_BIN, ["--coordinator", renamer.url, ...args]);
  t.teardown(() => third.kill("SIGKILL"));
  await third.waitForLine(/reason="the coordinator calls this host h9, but it is pinned as h1"/);
  t.false(third.lines.some((l) => /to=online/.test(l)));
});

test("an agent refuses a coordinator that presents a key other than the one it pinned", async (t) => {
  const firstKey = newKey();
  const first = await fakeCoordinator(t, firstKey);
  const stateDir = tempDir(t);
  const args = ["--token", tokenFor(firstKey), "--state-dir", stateDir, "--name", "web-1", "--address", "127.0.0.62", "--nginx", "managed", "--config", "/dev/null", "--max-backoff", "300ms"];
  const agent = spawnWatched("agent", AGENT_BIN, ["--coordinator", first.url, ...args]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/to=online/);
  await agent.kill("SIGTERM");

  const impostor = await fakeCoordinator(t, newKey());
  const again = spawnWatched("agent", AGENT_BIN, ["--coordinator", impostor.url, ...args]);
  t.teardown(() => again.kill("SIGKILL"));
  await again.waitForLine(/refusing the session reason="the coordinator presented a key other than the one this agent pinned/);
  t.false(again.lines.some((l) => /to=online/.test(l)), "never online with the impostor");
});
