import { createPublicKey, verify } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openSignedCommand, ProtocolError, type cutover } from "@cutover/protocol";
import { writeFileAtomic } from "../state/atomic-write.js";

/** Why a command was refused before anything was done. */
export type CommandRefusal = {
  /** ERR_COMMAND_UNSAVED: the accepted sequence could not be made durable (disk full?), so acting could replay after a crash. */
  code: "ERR_COMMAND_UNSIGNED" | "ERR_COMMAND_BAD_SIGNATURE" | "ERR_COMMAND_REPLAYED" | "ERR_COMMAND_MALFORMED" | "ERR_COMMAND_UNSAVED";
  message: string;
};

interface CoordinatorFile {
  /** base64 of the coordinator's raw Ed25519 public key, pinned at the first session. */
  publicKey: string;
  /** Highest command sequence accepted so far. */
  lastSequence: number;
}

export const COORDINATOR_FILE = "coordinator.json";

/**
 * Trust in the coordinator: its key is pinned at the first authenticated
 * session (a later session with another key is refused), and every command
 * must carry a valid signature by it and a sequence number above every one
 * accepted before — so a captured, replayed or reordered command does nothing.
 */
export class CommandVerifier {
  private readonly path: string;
  private state: CoordinatorFile | undefined;

  constructor(stateDir: string) {
    this.path = join(stateDir, COORDINATOR_FILE);
    if (existsSync(this.path)) this.state = JSON.parse(readFileSync(this.path, "utf8")) as CoordinatorFile;
  }

  /** Pins the key on first use; false when the coordinator presents a key other than the pinned one. */
  async pin(publicKey: Uint8Array): Promise<boolean> {
    const presented = Buffer.from(publicKey).toString("base64");
    if (!this.state) {
      this.state = { publicKey: presented, lastSequence: 0 };
      await this.save();
      return true;
    }
    return this.state.publicKey === presented;
  }

  /** The command to act on, or why it is refused. */
  async open(command: cutover.v1.Command): Promise<{ ok: true; command: cutover.v1.Command } | ({ ok: false } & CommandRefusal)> {
    if (!this.state) return { ok: false, code: "ERR_COMMAND_UNSIGNED", message: "no coordinator key is pinned yet" };
    if (!command.signed || command.signed.length === 0) {
      return { ok: false, code: "ERR_COMMAND_UNSIGNED", message: "the command is not signed" };
    }
    const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: Buffer.from(this.state.publicKey, "base64").toString("base64url") }, format: "jwk" });
    let valid = false;
    try {
      valid = verify(null, command.signed, key, command.signature);
    } catch {
      valid = false;
    }
    if (!valid) return { ok: false, code: "ERR_COMMAND_BAD_SIGNATURE", message: "the command's signature does not verify with the pinned coordinator key" };
    let inner: cutover.v1.Command;
    try {
      inner = openSignedCommand(command);
    } catch (error) {
      if (error instanceof ProtocolError) return { ok: false, code: "ERR_COMMAND_MALFORMED", message: error.message };
      throw error;
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

  /** Saves are chained: the file never goes back to a lower sequence than one already written. */
  private saving: Promise<void> = Promise.resolve();

  private save(): Promise<void> {
    const snapshot = JSON.stringify(this.state);
    this.saving = this.saving.catch(() => undefined).then(() => writeFileAtomic(this.path, snapshot, 0o600));
    return this.saving;
  }
}
