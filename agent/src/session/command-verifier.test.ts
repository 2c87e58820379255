import test from "ava";
import { createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { commandKeyInfo, signedCommandBytes, v1, welcomeProofBytes, type cutover } from "@cutover/protocol";
import { CommandVerifier, coordinatorKeyId, type LinkSession } from "./command-verifier.js";
import { newKeyShare } from "./session-key.js";

const HOST_ID = "host-1";
const rawPublic = (key: KeyObject) => Buffer.from((key.export({ format: "jwk" }) as { x: string }).x, "base64url");

/**
 * The coordinator's side of a session, written here from the protocol's description (not the
 * coordinator's code): its Ed25519 key, an X25519 share per session, HKDF, HMAC-SHA256.
 */
function fakeCoordinator() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const coordinatorPublicKey = rawPublic(publicKey);
  return {
    keyId: coordinatorKeyId(coordinatorPublicKey),
    /** A Welcome for `session`, with a command key when the agent sent a share (`share: "none"` answers without one). */
    welcome(session: LinkSession, options: { share?: "answer" | "none"; replaceAgentShare?: Uint8Array } = {}) {
      const nonce = session.nonce;
      let key: Buffer | undefined;
      let shares: { agent: Uint8Array; coordinator: Uint8Array } | undefined;
      if (session.keyShare && options.share !== "none") {
        const ours = generateKeyPairSync("x25519");
        const agentShare = options.replaceAgentShare ?? session.keyShare.share;
        const peer = createPublicKey({ key: { kty: "OKP", crv: "X25519", x: Buffer.from(agentShare).toString("base64url") }, format: "jwk" });
        key = Buffer.from(hkdfSync("sha256", diffieHellman({ privateKey: ours.privateKey, publicKey: peer }), nonce, commandKeyInfo(HOST_ID), 32));
        shares = { agent: agentShare, coordinator: rawPublic(ours.publicKey) };
      }
      const welcome = v1.Welcome.create({
        hostId: HOST_ID,
        heartbeatIntervalMs: 5000,
        protocolVersion: 1,
        coordinatorPublicKey,
        signature: sign(null, welcomeProofBytes({ nonce, hostId: HOST_ID, agentPublicKey: session.agentPublicKey, shares }), privateKey),
        sessionKeyShare: shares?.coordinator,
      });
      return { welcome, key };
    },
    /** A command as the coordinator sends it on a session with a command key. */
    macCommand(key: Buffer, nonce: Uint8Array, sequence: number, fields: Partial<cutover.v1.Command.$Properties> = {}): cutover.v1.Command {
      const commandId = `c-${sequence}-${randomBytes(4).toString("hex")}`;
      const deadlineUnixMs = Date.now() + 60_000;
      const signed = signedCommandBytes({ commandId, deadlineUnixMs, sequence, hostId: HOST_ID, sessionNonce: nonce, ping: { payload: "p" }, ...fields });
      return v1.Command.create({ commandId, deadlineUnixMs, signed, mac: createHmac("sha256", key).update(signed).digest() });
    },
    /** A command signed with the coordinator's key, as agents without "commands.mac" get them. */
    signedCommand(nonce: Uint8Array, sequence: number): cutover.v1.Command {
      const commandId = `s-${sequence}`;
      const deadlineUnixMs = Date.now() + 60_000;
      const signed = signedCommandBytes({ commandId, deadlineUnixMs, sequence, hostId: HOST_ID, sessionNonce: nonce, ping: { payload: "p" } });
      return v1.Command.create({ commandId, deadlineUnixMs, signed, signature: sign(null, signed, privateKey) });
    },
  };
}

/** A fresh agent state dir, a verifier, and one session (with a key share unless `share: false`). */
function setUp(t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-verifier-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const agentPublicKey = randomBytes(32);
  const session = (share = true): LinkSession => ({ nonce: randomBytes(32), agentPublicKey, ...(share && { keyShare: newKeyShare() }) });
  return { verifier: new CommandVerifier(dir), coordinator: fakeCoordinator(), session };
}

/** A session welcomed with a command key. */
async function keyedSession(t: Parameters<typeof setUp>[0]) {
  const { verifier, coordinator, session } = setUp(t);
  const s = session();
  const { welcome, key } = coordinator.welcome(s);
  const accepted = await verifier.welcome(welcome, s, coordinator.keyId);
  if (!accepted.ok || !key) throw new Error("the keyed Welcome was not taken");
  return { verifier, coordinator, session, s, key };
}

const refusal = (opened: Awaited<ReturnType<CommandVerifier["open"]>>) => (opened.ok ? "accepted" : opened.code);

test("a command with this session's MAC and a rising sequence is taken, as the coordinator sent it", async (t) => {
  const { verifier, coordinator, s, key } = await keyedSession(t);
  for (const sequence of [1, 2, 7]) {
    const opened = await verifier.open(coordinator.macCommand(key, s.nonce, sequence), s.nonce);
    t.true(opened.ok, `sequence ${sequence}`);
    if (opened.ok) {
      t.is(Number(opened.command.sequence), sequence);
      t.is(opened.command.ping?.payload, "p");
    }
  }
});

test("a wrong MAC is refused: one flipped bit, another key, altered bytes under the original MAC, a short MAC", async (t) => {
  const { verifier, coordinator, s, key } = await keyedSession(t);
  const flipped = coordinator.macCommand(key, s.nonce, 1);
  flipped.mac = Buffer.from(flipped.mac);
  flipped.mac[0]! ^= 1;
  t.is(refusal(await verifier.open(flipped, s.nonce)), "ERR_COMMAND_BAD_MAC");

  t.is(refusal(await verifier.open(coordinator.macCommand(randomBytes(32), s.nonce, 2), s.nonce)), "ERR_COMMAND_BAD_MAC");

  const altered = coordinator.macCommand(key, s.nonce, 3);
  const other = coordinator.macCommand(key, s.nonce, 3, { ping: { payload: "something else" } });
  altered.signed = other.signed;
  altered.commandId = other.commandId;
  const original = coordinator.macCommand(key, s.nonce, 3);
  altered.mac = original.mac;
  t.is(refusal(await verifier.open(altered, s.nonce)), "ERR_COMMAND_BAD_MAC");

  const short = coordinator.macCommand(key, s.nonce, 4);
  short.mac = short.mac.subarray(0, 16);
  t.is(refusal(await verifier.open(short, s.nonce)), "ERR_COMMAND_BAD_MAC");
  // None of them moved the sequence: the next genuine command is still taken.
  t.true((await verifier.open(coordinator.macCommand(key, s.nonce, 1), s.nonce)).ok);
});

test("a replayed or reordered sequence is refused on the session", async (t) => {
  const { verifier, coordinator, s, key } = await keyedSession(t);
  const first = coordinator.macCommand(key, s.nonce, 5);
  t.true((await verifier.open(first, s.nonce)).ok);
  t.is(refusal(await verifier.open(first, s.nonce)), "ERR_COMMAND_REPLAYED");
  t.is(refusal(await verifier.open(coordinator.macCommand(key, s.nonce, 4), s.nonce)), "ERR_COMMAND_REPLAYED");
  t.is(refusal(await verifier.open(coordinator.macCommand(key, s.nonce, 5), s.nonce)), "ERR_COMMAND_REPLAYED");
  t.true((await verifier.open(coordinator.macCommand(key, s.nonce, 6), s.nonce)).ok);
});

test("a command from another session is refused: recorded on the last one, or still arriving on it after the next Welcome", async (t) => {
  const { verifier, coordinator, session, s: first, key: firstKey } = await keyedSession(t);
  const recorded = coordinator.macCommand(firstKey, first.nonce, 1);
  const second = session();
  const { welcome, key: secondKey } = coordinator.welcome(second);
  t.true((await verifier.welcome(welcome, second, coordinator.keyId)).ok);
  // Replayed on the new link: its MAC is under the old session's key.
  t.is(refusal(await verifier.open(recorded, second.nonce)), "ERR_COMMAND_BAD_MAC");
  // Delivered on the old link after the new Welcome.
  t.is(refusal(await verifier.open(recorded, first.nonce)), "ERR_COMMAND_WRONG_SESSION");
  // Under the new key but naming the old session inside.
  t.is(refusal(await verifier.open(coordinator.macCommand(secondKey!, first.nonce, 1), second.nonce)), "ERR_COMMAND_WRONG_SESSION");
  // The new session's own sequence starts again at 1.
  t.true((await verifier.open(coordinator.macCommand(secondKey!, second.nonce, 1), second.nonce)).ok);
});

test("a command with a valid MAC for another host is refused", async (t) => {
  const { verifier, coordinator, s, key } = await keyedSession(t);
  t.is(refusal(await verifier.open(coordinator.macCommand(key, s.nonce, 1, { hostId: "host-2" }), s.nonce)), "ERR_COMMAND_WRONG_HOST");
});

test("a Welcome whose key shares were replaced on the way is refused, and so is a share the agent did not ask for", async (t) => {
  const { verifier, coordinator, session } = setUp(t);
  const s = session();
  // A relay swapped the agent's share for its own: the coordinator signed the relay's share.
  const relayed = coordinator.welcome(s, { replaceAgentShare: newKeyShare().share });
  const outcome = await verifier.welcome(relayed.welcome, s, coordinator.keyId);
  t.false(outcome.ok);
  // A relay swapped the coordinator's share in the Welcome.
  const genuine = coordinator.welcome(s);
  genuine.welcome.sessionKeyShare = newKeyShare().share;
  t.false((await verifier.welcome(genuine.welcome, s, coordinator.keyId)).ok);
  // A share in answer to a Hello without one.
  const plain = session(false);
  const unasked = coordinator.welcome(plain);
  unasked.welcome.sessionKeyShare = newKeyShare().share;
  t.false((await verifier.welcome(unasked.welcome, plain, coordinator.keyId)).ok);
});

test("a session without a command key (an older coordinator) takes signed commands only", async (t) => {
  const { verifier, coordinator, session } = setUp(t);
  const s = session();
  const { welcome } = coordinator.welcome(s, { share: "none" });
  t.true((await verifier.welcome(welcome, s, coordinator.keyId)).ok);
  t.is(refusal(await verifier.open(coordinator.macCommand(randomBytes(32), s.nonce, 1), s.nonce)), "ERR_COMMAND_BAD_MAC");
  t.true((await verifier.open(coordinator.signedCommand(s.nonce, Date.now() * 1000), s.nonce)).ok);
});

test("a keyed session still takes a signed command, under the stored sequence", async (t) => {
  const { verifier, coordinator, s } = await keyedSession(t);
  const signed = coordinator.signedCommand(s.nonce, Date.now() * 1000);
  t.true((await verifier.open(signed, s.nonce)).ok);
  t.is(refusal(await verifier.open(signed, s.nonce)), "ERR_COMMAND_REPLAYED");
});
