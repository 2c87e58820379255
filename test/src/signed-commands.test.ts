import test from "ava";
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { decodeEnvelope, encodeEnvelope, signedCommandBytes, v1, type cutover } from "@cutover/protocol";
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

/** A stand-in coordinator with its own key: it welcomes any agent and sends exactly the commands a test asks for. */
async function fakeCoordinator(t: { teardown(fn: () => void): void }, key: Key) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/v1/agent" });
  await once(wss, "listening");
  t.teardown(() => wss.close());
  const results: cutover.v1.CommandResult[] = [];
  let waiting: ((r: cutover.v1.CommandResult) => void) | undefined;
  let sessionResolve!: (ws: WebSocket) => void;
  const session = new Promise<WebSocket>((resolve) => (sessionResolve = resolve));
  wss.on("connection", (ws) => {
    ws.send(encodeEnvelope({ challenge: { nonce: randomBytes(32), protocolVersion: 1 } }));
    ws.on("message", (data) => {
      const envelope = decodeEnvelope(data as Buffer);
      if (envelope.body === "hello") {
        ws.send(encodeEnvelope({ welcome: { hostId: "h1", heartbeatIntervalMs: 1000, protocolVersion: 1, enrolled: true, coordinatorPublicKey: key.publicKey } }));
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
    /** Sends one frame and resolves with the agent's answer to it. */
    async send(command: cutover.v1.Command.$Properties): Promise<cutover.v1.CommandResult> {
      const ws = await session;
      const answered = new Promise<cutover.v1.CommandResult>((resolve) => (waiting = resolve));
      ws.send(encodeEnvelope({ command }));
      return answered;
    },
  };
}

function signedPing(key: Key, id: string, sequence: number, deadlineUnixMs = Date.now() + 10_000): cutover.v1.Command.$Properties {
  const inner = { commandId: id, deadlineUnixMs, sequence, ping: { payload: id } };
  const signed = signedCommandBytes(inner);
  return { commandId: id, deadlineUnixMs, signed, signature: sign(null, signed, key.privateKey) };
}

test("the agent acts only on commands signed by the coordinator it pinned, each with a new sequence: replayed, reordered, forged, unsigned and expired ones are refused and logged", async (t) => {
  const key = newKey();
  const coordinator = await fakeCoordinator(t, key);
  const stateDir = tempDir(t);
  const agent = spawnWatched("agent", AGENT_BIN, ["--coordinator", coordinator.url, "--token", "cte_any", "--state-dir", stateDir, "--name", "web-1", "--address", "127.0.0.61", "--nginx", "managed", "--config", "/dev/null"]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/to=online/);

  const valid = signedPing(key, "c1", 1_000);
  const ok = await coordinator.send(valid);
  t.is(ok.status, Status.OK);
  t.is(ok.pong?.payload, "c1");

  const cases: [string, cutover.v1.Command.$Properties, number, string][] = [
    ["the same frame again (replay)", valid, Status.REJECTED, "ERR_COMMAND_REPLAYED"],
    ["an older sequence under a new id (reordered)", signedPing(key, "c2", 999), Status.REJECTED, "ERR_COMMAND_REPLAYED"],
    ["a command signed by another key", signedPing(newKey(), "c3", 2_000), Status.REJECTED, "ERR_COMMAND_BAD_SIGNATURE"],
    ["an unsigned command", { commandId: "c4", deadlineUnixMs: Date.now() + 10_000, sequence: 3_000, ping: { payload: "c4" } }, Status.REJECTED, "ERR_COMMAND_UNSIGNED"],
    ["a command past its deadline", signedPing(key, "c5", 4_000, Date.now() - 1), Status.EXPIRED, "ERR_COMMAND_EXPIRED"],
  ];
  for (const [what, command, status, code] of cases) {
    const result = await coordinator.send(command);
    t.is(result.status, status, what);
    t.is(result.errorCode, code, what);
    t.falsy(result.pong, `${what}: nothing was done`);
  }
  t.true(agent.lines.some((l) => /refused a command commandId=c2 code=ERR_COMMAND_REPLAYED/.test(l)), "the agent logs the refusal");
  t.true(agent.lines.some((l) => /refused a command commandId=c3 code=ERR_COMMAND_BAD_SIGNATURE/.test(l)));
  t.is((await coordinator.send(signedPing(key, "c6", 5_000))).status, Status.OK, "a proper command after all that still works");
});

test("an agent refuses a coordinator that presents a key other than the one it pinned", async (t) => {
  const first = await fakeCoordinator(t, newKey());
  const stateDir = tempDir(t);
  const args = ["--token", "cte_any", "--state-dir", stateDir, "--name", "web-1", "--address", "127.0.0.62", "--nginx", "managed", "--config", "/dev/null", "--max-backoff", "300ms"];
  const agent = spawnWatched("agent", AGENT_BIN, ["--coordinator", first.url, ...args]);
  t.teardown(() => agent.kill("SIGKILL"));
  await agent.waitForLine(/to=online/);
  await agent.kill("SIGTERM");

  const impostor = await fakeCoordinator(t, newKey());
  const again = spawnWatched("agent", AGENT_BIN, ["--coordinator", impostor.url, ...args]);
  t.teardown(() => again.kill("SIGKILL"));
  await again.waitForLine(/presented a key other than the one this agent pinned: refusing the session/);
  t.false(again.lines.some((l) => /to=online/.test(l)), "never online with the impostor");
});
