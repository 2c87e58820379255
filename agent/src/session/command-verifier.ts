import { createHash, createPublicKey, verify } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { bundleSignedText, openSignedCommand, ProtocolError, welcomeProofBytes, type cutover } from "@cutover/protocol";
import { writeFileAtomic } from "../state/atomic-write.js";
import { deriveCommandKey, macMatches, type KeyShare } from "./session-key.js";

/** Why a command was refused before anything was done. */
export type CommandRefusal = {
  /** ERR_COMMAND_UNSAVED: the accepted sequence could not be made durable (disk full?), so acting could replay after a crash. */
  code:
    | "ERR_COMMAND_UNSIGNED"
    | "ERR_COMMAND_BAD_SIGNATURE"
    | "ERR_COMMAND_BAD_MAC"
    | "ERR_COMMAND_REPLAYED"
    | "ERR_COMMAND_MALFORMED"
    | "ERR_COMMAND_UNSAVED"
    | "ERR_COMMAND_WRONG_HOST"
    | "ERR_COMMAND_WRONG_SESSION";
  message: string;
};

interface CoordinatorFile {
  /** base64 of the coordinator's raw Ed25519 public key, pinned at the first session. */
  publicKey: string;
  /** Highest command sequence accepted so far. */
  lastSequence: number;
  /** This host's id at the coordinator, as its first signed Welcome said (absent in files from before host ids were signed). */
  hostId?: string;
  /** The highest Welcome.epoch of a Welcome that verified (absent: 0, a lone coordinator's). */
  epoch?: number;
}

/** What the agent knows of the session a Welcome or command arrived on. */
export interface LinkSession {
  /** Challenge.nonce of the session. */
  nonce: Uint8Array;
  /** This agent's public key (the one its Hello presented). */
  agentPublicKey: Uint8Array;
  /** The X25519 share its Hello carried ("commands.mac"), if it sent one. */
  keyShare?: KeyShare;
}

/** The session commands are taken on: its nonce, and its command key when the Welcome gave one. */
interface CurrentSession {
  nonce: Uint8Array;
  /** HMAC key of Command.mac on this session; in memory only, gone with the session. */
  commandKey: Buffer | undefined;
  /** Highest Command.sequence accepted under commandKey on this session. */
  lastMacSequence: number;
}

export const COORDINATOR_FILE = "coordinator.json";

/** base64url sha256 of a raw coordinator key: the id an enrollment token names (see @cutover/protocol). */
export function coordinatorKeyId(publicKey: Uint8Array): string {
  return createHash("sha256").update(publicKey).digest("base64url");
}

function ed25519Verify(rawKey: Uint8Array | string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const x = (typeof rawKey === "string" ? Buffer.from(rawKey, "base64") : Buffer.from(rawKey)).toString("base64url");
    return verify(null, data, createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" }), signature);
  } catch {
    return false;
  }
}

/**
 * Trust in the coordinator. Its key is pinned at the first session — only the
 * key the enrollment token names, when it names one — and a later session
 * with another key is refused. Every Welcome is signed by that key over this
 * session's nonce, the host id and this agent's key; the host id is pinned
 * with it. Every command must carry a valid signature by the key over bytes
 * that name this host and this session, with a sequence above every one
 * accepted before — so a command captured, replayed, reordered or moved from
 * another host's session does nothing.
 *
 * Every Welcome's signature covers its epoch too: the highest one verified is kept with the pin,
 * and a Welcome under a lower one (an old leader that has not noticed a takeover) is refused,
 * so it never becomes the session commands are taken on.
 *
 * A session whose Hello sent a key share ("commands.mac") and whose signed Welcome answered
 * with one also takes commands authenticated by Command.mac: HMAC-SHA256 under the key both
 * sides derived from the shares the Welcome's signature covers, with a sequence above the last
 * one on this session. The key is never written down: a command from another session has no
 * valid MAC on this one.
 */
export class CommandVerifier {
  private readonly path: string;
  private state: CoordinatorFile | undefined;
  private current: CurrentSession | undefined;

  constructor(stateDir: string) {
    this.path = join(stateDir, COORDINATOR_FILE);
    if (existsSync(this.path)) this.state = JSON.parse(readFileSync(this.path, "utf8")) as CoordinatorFile;
  }

  /**
   * True when `signature` (base64url) is the pinned coordinator key's signature over an agent
   * bundle's sha256 (`cutover.v1.agent-bundle:<hex>`, the bytes install.sh checks).
   */
  verifiesBundle(sha256Hex: string, signature: string): boolean {
    if (!this.state) return false;
    return ed25519Verify(this.state.publicKey, Buffer.from(bundleSignedText(sha256Hex), "utf8"), Buffer.from(signature, "base64url"));
  }

  /** True once a coordinator key is pinned (the agent has had a session). */
  get pinned(): boolean {
    return this.state !== undefined;
  }

  /**
   * Checks a Welcome and pins what it vouches for; the reason it is refused
   * otherwise. `enrollmentKeyId` is the key id the enrollment token names
   * (undefined: trust the first key seen, for an agent whose pin was cleared on purpose).
   */
  async welcome(welcome: cutover.v1.Welcome, session: LinkSession, enrollmentKeyId: string | undefined): Promise<{ ok: true } | { ok: false; reason: string }> {
    const presented = Buffer.from(welcome.coordinatorPublicKey).toString("base64");
    if (this.state && this.state.publicKey !== presented) {
      return { ok: false, reason: "the coordinator presented a key other than the one this agent pinned (another coordinator, or its data dir was replaced; remove STATE/coordinator.json to trust the new one)" };
    }
    if (!this.state && enrollmentKeyId !== undefined && coordinatorKeyId(welcome.coordinatorPublicKey) !== enrollmentKeyId) {
      return { ok: false, reason: "the coordinator's key is not the one the enrollment token names: this is not the coordinator that issued the token (a relay or impostor on the link?)" };
    }
    const coordinatorShare = welcome.sessionKeyShare ?? new Uint8Array();
    if (coordinatorShare.length > 0 && !session.keyShare) {
      return { ok: false, reason: "the Welcome answers a key share this agent did not send for this session" };
    }
    // The signature covers both shares: one replaced on the way (ours in Hello, theirs here) does not verify.
    const shares = coordinatorShare.length > 0 ? { agent: session.keyShare!.share, coordinator: coordinatorShare } : undefined;
    const epoch = Number(welcome.epoch ?? 0);
    const proof = welcomeProofBytes({ nonce: session.nonce, hostId: welcome.hostId, agentPublicKey: session.agentPublicKey, shares, epoch, members: welcome.members ?? [] });
    if (!ed25519Verify(welcome.coordinatorPublicKey, proof, welcome.signature)) {
      return { ok: false, reason: "the Welcome's signature does not verify with the coordinator's key for this session (forged or replayed Welcome)" };
    }
    const commandKey = shares ? deriveCommandKey(session.keyShare!, coordinatorShare, session.nonce, welcome.hostId) : undefined;
    if (shares && !commandKey) return { ok: false, reason: "the Welcome's key share is not a usable X25519 key" };
    if (this.state?.hostId !== undefined && this.state.hostId !== welcome.hostId) {
      return { ok: false, reason: `the coordinator calls this host ${welcome.hostId}, but it is pinned as ${this.state.hostId}` };
    }
    const highest = this.state?.epoch ?? 0;
    if (epoch < highest) {
      return {
        ok: false,
        reason: `the coordinator leads under epoch ${epoch}, but a Welcome under epoch ${highest} verified before: it is an old leader that has not noticed another took over (if the fleet's database was replaced, remove "epoch" from STATE/${COORDINATOR_FILE})`,
      };
    }
    if (!this.state || this.state.hostId === undefined) {
      const pinned: CoordinatorFile = { publicKey: presented, lastSequence: this.state?.lastSequence ?? 0, hostId: welcome.hostId, ...(epoch > 0 && { epoch }) };
      await this.save(pinned);
      this.state = pinned;
    } else if (epoch > highest) {
      // Raised before the write, as the sequence is: a Welcome that could not be saved is refused, and the next is judged against it.
      this.state.epoch = epoch;
      await this.save();
    }
    // Only once the pin is durable: a session whose Welcome could not be saved takes no command.
    this.current = { nonce: session.nonce, commandKey, lastMacSequence: 0 };
    return { ok: true };
  }

  /** The command to act on, or why it is refused. `nonce` is the Challenge nonce of the session it arrived on. */
  async open(command: cutover.v1.Command, nonce: Uint8Array): Promise<{ ok: true; command: cutover.v1.Command } | ({ ok: false } & CommandRefusal)> {
    if (!this.state) return { ok: false, code: "ERR_COMMAND_UNSIGNED", message: "no coordinator key is pinned yet" };
    if (command.mac && command.mac.length > 0) return this.openMac(command, nonce);
    if (!command.signed || command.signed.length === 0) {
      return { ok: false, code: "ERR_COMMAND_UNSIGNED", message: "the command is not signed" };
    }
    if (!ed25519Verify(this.state.publicKey, command.signed, command.signature)) {
      return { ok: false, code: "ERR_COMMAND_BAD_SIGNATURE", message: "the command's signature does not verify with the pinned coordinator key" };
    }
    const opened = this.innerFor(command);
    if (!opened.ok) return opened;
    const inner = opened.command;
    if (!this.current || !Buffer.from(inner.sessionNonce).equals(Buffer.from(nonce)) || !Buffer.from(nonce).equals(Buffer.from(this.current.nonce))) {
      return { ok: false, code: "ERR_COMMAND_WRONG_SESSION", message: "the command is signed for another session (recorded and replayed on a new link?)" };
    }
    const sequence = Number(inner.sequence);
    if (!(sequence > this.state.lastSequence)) {
      return { ok: false, code: "ERR_COMMAND_REPLAYED", message: `sequence ${sequence} is not above the last accepted (${this.state.lastSequence}): a replayed or reordered command` };
    }
    // Raised before the write, so a command opened while it is in flight is judged against it.
    this.state.lastSequence = sequence;
    await this.save();
    return { ok: true, command: inner };
  }

  /**
   * A command authenticated by this session's key. Its sequence is the session's own and is not
   * saved: the key dies with the session, so nothing accepted here can be replayed on another.
   */
  private openMac(command: cutover.v1.Command, nonce: Uint8Array): { ok: true; command: cutover.v1.Command } | ({ ok: false } & CommandRefusal) {
    const current = this.current;
    if (!current || !Buffer.from(nonce).equals(Buffer.from(current.nonce))) {
      return { ok: false, code: "ERR_COMMAND_WRONG_SESSION", message: "the command arrived on a session this agent has not been welcomed on" };
    }
    if (!current.commandKey) {
      return { ok: false, code: "ERR_COMMAND_BAD_MAC", message: "the command carries a MAC, but this session agreed no command key (its Welcome had no key share)" };
    }
    if (!command.signed?.length || !macMatches(current.commandKey, command.signed, command.mac)) {
      return { ok: false, code: "ERR_COMMAND_BAD_MAC", message: "the command's MAC does not verify under this session's key (forged, altered, or from another session)" };
    }
    const opened = this.innerFor(command);
    if (!opened.ok) return opened;
    const inner = opened.command;
    if (!Buffer.from(inner.sessionNonce).equals(Buffer.from(current.nonce))) {
      return { ok: false, code: "ERR_COMMAND_WRONG_SESSION", message: "the command names another session" };
    }
    const sequence = Number(inner.sequence);
    if (!(sequence > current.lastMacSequence)) {
      return { ok: false, code: "ERR_COMMAND_REPLAYED", message: `sequence ${sequence} is not above the last accepted on this session (${current.lastMacSequence}): a replayed or reordered command` };
    }
    current.lastMacSequence = sequence;
    return { ok: true, command: inner };
  }

  /** The authenticated inner command, decoded, when it is addressed to this host. */
  private innerFor(command: cutover.v1.Command): { ok: true; command: cutover.v1.Command } | ({ ok: false } & CommandRefusal) {
    let inner: cutover.v1.Command;
    try {
      inner = openSignedCommand(command);
    } catch (error) {
      if (error instanceof ProtocolError) return { ok: false, code: "ERR_COMMAND_MALFORMED", message: error.message };
      throw error;
    }
    const hostId = this.state?.hostId;
    if (inner.hostId !== hostId) {
      return { ok: false, code: "ERR_COMMAND_WRONG_HOST", message: `the command is for host ${inner.hostId || "(none)"}, not this host (${hostId ?? "not yet welcomed"})` };
    }
    return { ok: true, command: inner };
  }

  /** Saves are chained: the file never goes back to a lower sequence than one already written. */
  private saving: Promise<void> = Promise.resolve();

  private save(state = this.state): Promise<void> {
    const snapshot = JSON.stringify(state);
    this.saving = this.saving.catch(() => undefined).then(() => writeFileAtomic(this.path, snapshot, 0o600));
    return this.saving;
  }
}
