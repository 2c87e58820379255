import "./plain-numbers.js";
import { cutover } from "../gen/proto.js";
import { ProtocolError, ProtocolErrorCode } from "./errors.js";
import { isValidName } from "./names.js";
import { MAX_MEMBERS } from "./leadership.js";
import { KEY_SHARE_BYTES, MAC_BYTES } from "./session-mac.js";

export const v1 = cutover.v1;
export type { cutover };
export type Envelope = cutover.v1.Envelope;
export type EnvelopeInit = cutover.v1.Envelope.$Properties;
export type BodyKind = NonNullable<cutover.v1.Envelope["body"]>;

/** Version of this wire contract; bumped only for changes that addition cannot express. */
export const PROTOCOL_VERSION = 1;
/** Largest frame either side accepts or sends. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Length of Challenge.nonce. */
export const NONCE_BYTES = 32;
/** Ed25519 raw public key length. */
export const PUBLIC_KEY_BYTES = 32;
/** Largest artifact piece one ArtifactChunk carries (well under MAX_FRAME_BYTES). */
export const MAX_ARTIFACT_CHUNK = 512 * 1024;
/** Ed25519 signature length. */
export const SIGNATURE_BYTES = 64;
/**
 * Bounds on the repeated fields an agent sends. The frame limit alone allows
 * half a million empty elements per frame, and the coordinator turns each into
 * an object, JSON and a stored row synchronously: one frame stalls it for seconds.
 */
export const MAX_INSTANCES = 256;
export const MAX_DISKS = 16;
export const MAX_CAPABILITIES = 64;
export const MAX_LABELS = 64;
export const MAX_LOG_LINES = 1000;

/** Encodes one envelope. Throws ProtocolError if the result would exceed MAX_FRAME_BYTES. */
export function encodeEnvelope(envelope: EnvelopeInit): Uint8Array {
  const bytes = v1.Envelope.encode(envelope).finish();
  if (bytes.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(ProtocolErrorCode.FrameTooLarge, `refusing to send a ${bytes.length}-byte frame (max ${MAX_FRAME_BYTES})`);
  }
  return bytes;
}

/**
 * Decodes and checks one frame. Throws ProtocolError (never anything else) for
 * oversized, undecodable or incomplete frames. An envelope whose body is a case
 * this version does not know decodes with `body` undefined: receivers log and
 * ignore it rather than fail, so newer peers can add message kinds.
 */
export function decodeEnvelope(frame: Uint8Array): Envelope {
  if (frame.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(ProtocolErrorCode.FrameTooLarge, `frame of ${frame.length} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
  }
  let envelope: Envelope;
  try {
    envelope = v1.Envelope.decode(frame);
  } catch (error) {
    throw new ProtocolError(ProtocolErrorCode.DecodeFailed, `frame does not decode as an Envelope: ${(error as Error).message}`);
  }
  checkEnvelope(envelope);
  return envelope;
}

function missing(kind: string, field: string): never {
  throw new ProtocolError(ProtocolErrorCode.MissingField, `${kind}.${field} is required`);
}
function invalid(kind: string, field: string, expected: string): never {
  throw new ProtocolError(ProtocolErrorCode.InvalidField, `${kind}.${field} must be ${expected}`);
}

function atMost(kind: string, field: string, list: readonly unknown[] | null | undefined, max: number): void {
  if ((list?.length ?? 0) > max) invalid(kind, field, `at most ${max} entries`);
}

/** The per-kind required fields; the generated code checks only wire types. */
function checkEnvelope(envelope: Envelope): void {
  switch (envelope.body) {
    case "challenge": {
      const m = envelope.challenge!;
      if (!m.nonce || m.nonce.length !== NONCE_BYTES) invalid("Challenge", "nonce", `${NONCE_BYTES} bytes`);
      if (!m.protocolVersion) missing("Challenge", "protocol_version");
      return;
    }
    case "hello": {
      const m = envelope.hello!;
      if (!m.protocolVersion) missing("Hello", "protocol_version");
      if (!m.name) missing("Hello", "name");
      if (!isValidName(m.name)) invalid("Hello", "name", "a valid host name");
      if (!m.publicKey || m.publicKey.length !== PUBLIC_KEY_BYTES) invalid("Hello", "public_key", `${PUBLIC_KEY_BYTES} bytes`);
      if (!m.signature || m.signature.length !== SIGNATURE_BYTES) invalid("Hello", "signature", `${SIGNATURE_BYTES} bytes`);
      atMost("Hello", "capabilities", m.capabilities, MAX_CAPABILITIES);
      if (m.sessionKeyShare?.length && m.sessionKeyShare.length !== KEY_SHARE_BYTES) invalid("Hello", "session_key_share", `${KEY_SHARE_BYTES} bytes or absent`);
      atMost("Hello", "labels", Object.keys(m.labels ?? {}), MAX_LABELS);
      atMost("Hello", "instances", m.instances, MAX_INSTANCES);
      atMost("Hello", "resources.disks", m.resources?.disks, MAX_DISKS);
      return;
    }
    case "welcome": {
      const m = envelope.welcome!;
      if (!m.hostId) missing("Welcome", "host_id");
      if (!m.heartbeatIntervalMs) missing("Welcome", "heartbeat_interval_ms");
      if (m.sessionKeyShare?.length && m.sessionKeyShare.length !== KEY_SHARE_BYTES) invalid("Welcome", "session_key_share", `${KEY_SHARE_BYTES} bytes or absent`);
      atMost("Welcome", "members", m.members, MAX_MEMBERS);
      return;
    }
    case "refusal":
      if (!envelope.refusal!.code) missing("Refusal", "code");
      return;
    case "heartbeat":
      if (!envelope.heartbeat!.resources) missing("Heartbeat", "resources");
      atMost("Heartbeat", "instances", envelope.heartbeat!.instances, MAX_INSTANCES);
      atMost("Heartbeat", "resources.disks", envelope.heartbeat!.resources.disks, MAX_DISKS);
      return;
    case "command": {
      const m = envelope.command!;
      if (!m.commandId) missing("Command", "command_id");
      if (!m.deadlineUnixMs) missing("Command", "deadline_unix_ms");
      if (m.mac?.length && m.mac.length !== MAC_BYTES) invalid("Command", "mac", `${MAC_BYTES} bytes or absent`);
      return;
    }
    case "commandResult": {
      const m = envelope.commandResult!;
      if (!m.commandId) missing("CommandResult", "command_id");
      if (!m.status) missing("CommandResult", "status");
      return;
    }
    case "event":
      if (!envelope.event!.kind) missing("Event", "kind");
      return;
    case "artifactRequest": {
      const m = envelope.artifactRequest!;
      if (!m.requestId) missing("ArtifactRequest", "request_id");
      if (!/^[0-9a-f]{64}$/.test(m.sha256 ?? "")) invalid("ArtifactRequest", "sha256", "64 lower-case hex digits");
      if (!m.length || m.length > MAX_ARTIFACT_CHUNK) invalid("ArtifactRequest", "length", `1..${MAX_ARTIFACT_CHUNK}`);
      return;
    }
    case "logLines":
      if (!envelope.logLines!.streamId) missing("LogLines", "stream_id");
      atMost("LogLines", "lines", envelope.logLines!.lines, MAX_LOG_LINES);
      return;
    case "artifactChunk":
      if (!envelope.artifactChunk!.requestId) missing("ArtifactChunk", "request_id");
      return;
    case undefined:
      return;
  }
}

/**
 * The exact bytes an agent signs to prove it holds its key for this session.
 * Both sides call this, so the encoding cannot drift.
 */
export function helloProofBytes(nonce: Uint8Array, name: string, publicKey: Uint8Array): Uint8Array {
  return v1.HelloProof.encode({ context: "cutover.v1.hello", nonce, name, publicKey }).finish();
}

/** The key shares of a session with per-session command keys (session-mac.ts); empty for one without. */
export interface KeyShares {
  /** Hello.session_key_share. */
  agent: Uint8Array;
  /** Welcome.session_key_share. */
  coordinator: Uint8Array;
}

/** What a Welcome's signature covers (WelcomeProof), beside its fixed context. */
export interface WelcomeProofInit {
  /** Challenge.nonce of the session. */
  nonce: Uint8Array;
  /** Welcome.host_id. */
  hostId: string;
  /** Hello.public_key of the agent welcomed. */
  agentPublicKey: Uint8Array;
  /** The session's key shares, when the agent took a command key ("commands.mac"). */
  shares?: KeyShares;
  /** Welcome.epoch; 0 or absent for a lone coordinator or an agent without FOLLOWS_LEADER. */
  epoch?: number;
  /** Welcome.members, in order; empty or absent likewise. */
  members?: readonly string[];
}

/**
 * The exact bytes the coordinator signs in Welcome.signature (and the agent verifies). proto3
 * leaves a field at its zero value out of the encoding: without shares, at epoch 0 and with no
 * members they are the bytes agents before "commands.mac" and FOLLOWS_LEADER verify
 * (frame.test.ts checks this against the wire format).
 */
export function welcomeProofBytes(proof: WelcomeProofInit): Uint8Array {
  const { nonce, hostId, agentPublicKey, shares, epoch, members } = proof;
  return v1.WelcomeProof.encode({
    context: "cutover.v1.welcome",
    nonce,
    hostId,
    agentPublicKey,
    ...(shares && { agentKeyShare: shares.agent, coordinatorKeyShare: shares.coordinator }),
    epoch,
    members: members && [...members],
  }).finish();
}
