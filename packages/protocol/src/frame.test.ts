import test from "ava";
import {
  decodeEnvelope,
  encodeEnvelope,
  helloProofBytes,
  MAX_FRAME_BYTES,
  MAX_MEMBERS,
  welcomeProofBytes,
  ProtocolError,
  ProtocolErrorCode,
  CloseCode,
  type EnvelopeInit,
  v1,
} from "./index.js";

const bytes = (n: number, fill = 7) => new Uint8Array(n).fill(fill);

const everyMessage: [NonNullable<ReturnType<typeof decodeEnvelope>["body"]>, EnvelopeInit][] = [
  ["challenge", { challenge: { nonce: bytes(32), protocolVersion: 1 } }],
  [
    "hello",
    {
      hello: {
        protocolVersion: 1,
        name: "web-1",
        publicKey: bytes(32),
        signature: bytes(64),
        enrollmentToken: "cte_x",
        hostname: "web-1.example",
        agentVersion: "0.1.0",
        address: "10.0.0.5",
        labels: { role: "geoip", zone: "a" },
        capabilities: ["ping", "nginx.live"],
        resources: { cpuLoadPercent: 12.5, memTotalBytes: 2 ** 40, memAvailableBytes: 2 ** 33, disks: [{ path: "/var/lib/cutover", mount: "/", freeBytes: 2 ** 38, totalBytes: 2 ** 39 }], load1: 0.5, load5: 0.25, load15: 0.125, cpuCount: 8, sampledAtUnixMs: 1_790_000_000_000 },
        instances: [{ app: "geoip", color: "blue", release: "v1", port: 7001, state: "healthy", pid: 1234, live: true, rssBytes: 50_000_000 }],
      },
    },
  ],
  ["welcome", { welcome: { hostId: "h1", heartbeatIntervalMs: 5000, protocolVersion: 1, enrolled: true, epoch: 7, members: ["ws://127.0.0.2:7400/v1/agent", "ws://127.0.0.3:7400/v1/agent"] } }],
  ["refusal", { refusal: { code: "NOT_LEADER", message: "follower", permanent: false, leaderUrl: "ws://127.0.0.2:7400/v1/agent" } }],
  ["heartbeat", { heartbeat: { resources: { memTotalBytes: 1 }, instances: [{ app: "a", color: "green", port: 7002 }] } }],
  ["command", { command: { commandId: "c1", deadlineUnixMs: 1_790_000_000_000, sequence: 3, signature: bytes(64), ping: { payload: "p" } } }],
  ["commandResult", { commandResult: { commandId: "c1", status: v1.CommandResult.Status.OK, durationMs: 3, pong: { payload: "p" } } }],
  ["event", { event: { commandId: "c1", atUnixMs: 1_790_000_000_000, kind: "step", app: "geoip", color: "green", message: "started", step: "start" } }],
];

for (const [kind, envelope] of everyMessage) {
  test(`${kind} survives an encode/decode round trip unchanged`, (t) => {
    const decoded = decodeEnvelope(encodeEnvelope(envelope));
    t.is(decoded.body, kind);
    const plain = v1.Envelope.toObject(decoded, { bytes: Array, defaults: false });
    const expected = v1.Envelope.toObject(v1.Envelope.fromObject(envelope), { bytes: Array, defaults: false });
    t.deepEqual(plain, expected);
  });
}

test("a 64-bit field beyond 2^53-1 is refused: a number would round it (the decoder fuzz's seed 0xc2f66595)", (t) => {
  // An Event whose at_unix_ms is an overflowing 10-byte varint: 2^64-1, which a number rounds to 2^64 and re-encodes as 0.
  const hex = "8a013b0a0b656f6e7374727563746f721080d8c1a28c341a0c7a70647062326b626376777a22012f10ffffffffffffffffff7f2a09682d692e3033333065320963386c306135683939";
  const frame = Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
  const error = t.throws(() => decodeEnvelope(frame), { instanceOf: ProtocolError });
  t.is(error?.code, ProtocolErrorCode.DecodeFailed);
  t.regex(error?.message ?? "", /uint64 .* beyond 2\^53-1/);
  const safe = decodeEnvelope(encodeEnvelope({ heartbeat: { resources: { memTotalBytes: Number.MAX_SAFE_INTEGER } } }));
  t.is(safe.heartbeat!.resources!.memTotalBytes, Number.MAX_SAFE_INTEGER);
});

test("64-bit fields decode as plain numbers, absent ones as 0", (t) => {
  const decoded = decodeEnvelope(encodeEnvelope({ heartbeat: { resources: { memTotalBytes: 2 ** 40 + 3 } } }));
  t.is(decoded.heartbeat!.resources!.memTotalBytes, 2 ** 40 + 3);
  t.is(decoded.heartbeat!.resources!.memAvailableBytes, 0);
  const request = decodeEnvelope(encodeEnvelope({ artifactRequest: { requestId: "1", sha256: "a".repeat(64), offset: 0, length: 5 } }));
  t.is(request.artifactRequest!.offset, 0);
});

const rejectMacro = test.macro((t, frame: Uint8Array, code: ProtocolErrorCode, closeCode: number) => {
  const error = t.throws(() => decodeEnvelope(frame), { instanceOf: ProtocolError });
  t.is(error?.code, code);
  t.is(error?.closeCode as number | undefined, closeCode);
});

const hello = encodeEnvelope(everyMessage[1]![1]);
test("garbage is rejected", rejectMacro, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), ProtocolErrorCode.DecodeFailed, CloseCode.ProtocolError);
test("a truncated frame is rejected", rejectMacro, hello.subarray(0, hello.length - 5), ProtocolErrorCode.DecodeFailed, CloseCode.ProtocolError);
test("an oversized frame is rejected before decoding", rejectMacro, new Uint8Array(MAX_FRAME_BYTES + 1), ProtocolErrorCode.FrameTooLarge, CloseCode.MessageTooBig);
test("a Hello with a short key is rejected", rejectMacro, encodeEnvelope({ hello: { protocolVersion: 1, name: "a", publicKey: bytes(31), signature: bytes(64) } }), ProtocolErrorCode.InvalidField, CloseCode.ProtocolError);
test("a Hello with a path in its name is rejected", rejectMacro, encodeEnvelope({ hello: { protocolVersion: 1, name: "../etc", publicKey: bytes(32), signature: bytes(64) } }), ProtocolErrorCode.InvalidField, CloseCode.ProtocolError);
test("a Command without an id is rejected", rejectMacro, encodeEnvelope({ command: { deadlineUnixMs: 5, ping: {} } }), ProtocolErrorCode.MissingField, CloseCode.ProtocolError);
test("a Heartbeat without resources is rejected", rejectMacro, encodeEnvelope({ heartbeat: {} }), ProtocolErrorCode.MissingField, CloseCode.ProtocolError);
test("a CommandResult without a status is rejected", rejectMacro, encodeEnvelope({ commandResult: { commandId: "x" } }), ProtocolErrorCode.MissingField, CloseCode.ProtocolError);
test("a Challenge with a short nonce is rejected", rejectMacro, encodeEnvelope({ challenge: { nonce: bytes(8), protocolVersion: 1 } }), ProtocolErrorCode.InvalidField, CloseCode.ProtocolError);

test("an unknown oneof case decodes with no body instead of failing", (t) => {
  // Field 99, wire type 2 (length-delimited), length 0.
  const decoded = decodeEnvelope(new Uint8Array([0x9a, 0x06, 0x00]));
  t.is(decoded.body, undefined);
});

test("a Command with an operation this version does not know decodes with no operation", (t) => {
  const known = encodeEnvelope({ command: { commandId: "c", deadlineUnixMs: 9 } });
  // Append field 99 (length-delimited, empty) inside the Command: rewrite the outer length.
  const inner = known.subarray(2);
  const extended = new Uint8Array([0x7a, inner.length + 3, ...inner, 0x9a, 0x06, 0x00]);
  const decoded = decodeEnvelope(extended);
  t.is(decoded.body, "command");
  t.is(decoded.command!.commandId, "c");
  t.is(decoded.command!.operation, undefined);
});

test("encoding a frame over the limit throws instead of sending it", (t) => {
  const error = t.throws(() => encodeEnvelope({ event: { kind: "x", message: "y".repeat(MAX_FRAME_BYTES) } }), { instanceOf: ProtocolError });
  t.is(error?.code, ProtocolErrorCode.FrameTooLarge);
});

test("the hello proof binds the nonce, the name and the key", (t) => {
  const base = helloProofBytes(bytes(32, 1), "web-1", bytes(32, 2));
  t.deepEqual(helloProofBytes(bytes(32, 1), "web-1", bytes(32, 2)), base);
  t.notDeepEqual(helloProofBytes(bytes(32, 9), "web-1", bytes(32, 2)), base);
  t.notDeepEqual(helloProofBytes(bytes(32, 1), "web-2", bytes(32, 2)), base);
  t.notDeepEqual(helloProofBytes(bytes(32, 1), "web-1", bytes(32, 3)), base);
});

/** A length-delimited field as the wire carries it (lengths below 128 here: one byte). */
const field = (number: number, value: Uint8Array) => [(number << 3) | 2, value.length, ...value];
/** ASCII text as bytes (this package builds without Node's or the DOM's types: no TextEncoder). */
const text = (value: string) => Uint8Array.from(value, (c) => c.charCodeAt(0));

test("a WelcomeProof at epoch 0 with no members is the four fields agents before FOLLOWS_LEADER sign, byte for byte", (t) => {
  const nonce = bytes(32, 1);
  const agentPublicKey = bytes(32, 2);
  // What every agent verifies without the new fields: context, nonce, host id, agent key, in field order.
  const before = Uint8Array.from([...field(1, text("cutover.v1.welcome")), ...field(2, nonce), ...field(3, text("h1")), ...field(4, agentPublicKey)]);
  // As plain bytes: the encoder may hand back a Buffer or a Uint8Array.
  t.deepEqual(Uint8Array.from(welcomeProofBytes({ nonce, hostId: "h1", agentPublicKey })), before);
  t.deepEqual(Uint8Array.from(welcomeProofBytes({ nonce, hostId: "h1", agentPublicKey, epoch: 0, members: [] })), before, "epoch 0 and no members, set explicitly, are left out");
});

test("the welcome proof binds the epoch and the members, in order", (t) => {
  const proof = { nonce: bytes(32, 1), hostId: "h1", agentPublicKey: bytes(32, 2) };
  const members = ["ws://127.0.0.2:7400/v1/agent", "ws://127.0.0.3:7400/v1/agent"];
  const base = welcomeProofBytes({ ...proof, epoch: 4, members });
  t.deepEqual(welcomeProofBytes({ ...proof, epoch: 4, members: [...members] }), base);
  t.notDeepEqual(welcomeProofBytes({ ...proof, epoch: 3, members }), base);
  t.notDeepEqual(welcomeProofBytes({ ...proof, epoch: 4, members: [...members].reverse() }), base);
  t.notDeepEqual(welcomeProofBytes({ ...proof, epoch: 4, members: members.slice(1) }), base);
  t.notDeepEqual(welcomeProofBytes(proof), base);
});

test("a Welcome listing more members than MAX_MEMBERS is rejected", rejectMacro,
  encodeEnvelope({ welcome: { hostId: "h1", heartbeatIntervalMs: 5000, members: Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => `ws://127.0.0.${i + 1}:7400/v1/agent`) } }),
  ProtocolErrorCode.InvalidField, CloseCode.ProtocolError);
