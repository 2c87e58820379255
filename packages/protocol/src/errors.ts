/**
 * Stable codes for everything that can go wrong on the agent session. Tests
 * and logs match on these, never on message text.
 */
export const ProtocolErrorCode = {
  /** A frame is larger than MAX_FRAME_BYTES. */
  FrameTooLarge: "ERR_FRAME_TOO_LARGE",
  /** A frame is not a valid protobuf Envelope (garbage, truncated). */
  DecodeFailed: "ERR_DECODE_FAILED",
  /** A decoded message lacks a field its kind requires. */
  MissingField: "ERR_MISSING_FIELD",
  /** A field has a value outside what the protocol allows. */
  InvalidField: "ERR_INVALID_FIELD",
  /** A text WebSocket frame; the protocol is binary only. */
  TextFrame: "ERR_TEXT_FRAME",
  /** The peer sent more frames than the rate limit allows. */
  RateLimited: "ERR_RATE_LIMITED",
  /** The peer did not complete the handshake in time. */
  HandshakeTimeout: "ERR_HANDSHAKE_TIMEOUT",
  /** A valid message arrived in a session state where it makes no sense. */
  UnexpectedMessage: "ERR_UNEXPECTED_MESSAGE",
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

/** WebSocket close statuses the cutover session uses (4000–4999 are application-defined). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  UnsupportedData: 1003,
  MessageTooBig: 1009,
  ProtocolError: 4400,
  AuthRefused: 4401,
  HandshakeTimeout: 4408,
  Replaced: 4409,
  RateLimited: 4429,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

const CLOSE_CODE_FOR: Record<ProtocolErrorCode, CloseCode> = {
  ERR_FRAME_TOO_LARGE: CloseCode.MessageTooBig,
  ERR_DECODE_FAILED: CloseCode.ProtocolError,
  ERR_MISSING_FIELD: CloseCode.ProtocolError,
  ERR_INVALID_FIELD: CloseCode.ProtocolError,
  ERR_TEXT_FRAME: CloseCode.UnsupportedData,
  ERR_RATE_LIMITED: CloseCode.RateLimited,
  ERR_HANDSHAKE_TIMEOUT: CloseCode.HandshakeTimeout,
  ERR_UNEXPECTED_MESSAGE: CloseCode.ProtocolError,
};

/** A violation of the wire protocol by the peer. The session closes with `closeCode`. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  readonly closeCode: CloseCode;
  constructor(readonly code: ProtocolErrorCode, message: string) {
    super(message);
    this.closeCode = CLOSE_CODE_FOR[code];
  }
}

/**
 * Why the coordinator refused a session (Refusal.code). `permanent` ones cannot
 * succeed on retry with the same settings.
 */
export const RefusalCode = {
  /** The enrollment token is not one the coordinator issued. */
  EnrollTokenUnknown: "ENROLL_TOKEN_UNKNOWN",
  /** The enrollment token was already used by another agent. */
  EnrollTokenUsed: "ENROLL_TOKEN_USED",
  /** The enrollment token expired before it was used. */
  EnrollTokenExpired: "ENROLL_TOKEN_EXPIRED",
  /** No token was given and the coordinator does not know this agent's key. */
  UnknownAgent: "UNKNOWN_AGENT",
  /** The host name is enrolled with a different key. */
  KeyMismatch: "KEY_MISMATCH",
  /** The Hello signature does not verify with the presented key. */
  BadSignature: "BAD_SIGNATURE",
  /** The enrollment token was revoked by an admin. */
  EnrollTokenRevoked: "ENROLL_TOKEN_REVOKED",
  /** An admin removed this host (`cutover hosts remove`): its key is refused from then on. */
  HostRemoved: "HOST_REMOVED",
  /** The agent speaks a protocol version the coordinator cannot. */
  ProtocolVersion: "PROTOCOL_VERSION",
  /** This coordinator does not lead the fleet (never permanent): Refusal.leader_url names the one that does, when it is known. */
  NotLeader: "NOT_LEADER",
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];
