import { v1, type cutover } from "./frame.js";
import { ProtocolError, ProtocolErrorCode } from "./errors.js";

/** The exact bytes the coordinator signs for a command (and the agent verifies). */
export function signedCommandBytes(command: cutover.v1.Command.$Properties): Uint8Array {
  return v1.Command.encode({ ...command, signature: undefined, signed: undefined, mac: undefined }).finish();
}

/**
 * The command inside a signed one. The caller has verified the signature over
 * `outer.signed`; this decodes those bytes and checks they are the command the
 * outer frame claims to be.
 */
export function openSignedCommand(outer: cutover.v1.Command): cutover.v1.Command {
  let inner: cutover.v1.Command;
  try {
    inner = v1.Command.decode(outer.signed);
  } catch (error) {
    throw new ProtocolError(ProtocolErrorCode.DecodeFailed, `signed command does not decode: ${(error as Error).message}`);
  }
  if (inner.commandId !== outer.commandId) {
    throw new ProtocolError(ProtocolErrorCode.InvalidField, "Command.signed names another command_id than the frame");
  }
  return inner;
}
