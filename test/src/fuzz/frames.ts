/**
 * Frame generators for the protocol fuzzer: well-formed envelopes of every
 * body kind (from the generated types), then byte- and wire-level mutations of
 * them, hand-built pathological wire shapes, and random bytes.
 *
 * Every frame comes with a `recipe` (how it was made) so a failure says what
 * kind of input broke the decoder, and every choice comes from the Rng, so a
 * seed and an index reproduce the frame byte for byte.
 */
import {
  encodeEnvelope,
  MAX_ARTIFACT_CHUNK,
  MAX_FRAME_BYTES,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  PUBLIC_KEY_BYTES,
  RefusalCode,
  SIGNATURE_BYTES,
  v1,
  type EnvelopeInit,
  type cutover,
} from "@cutover/protocol";
import { Rng, subSeed } from "./prng.js";

export const BODY_KINDS = [
  "challenge",
  "hello",
  "welcome",
  "refusal",
  "heartbeat",
  "command",
  "commandResult",
  "event",
  "artifactRequest",
  "artifactChunk",
  "logLines",
] as const;
export type Kind = (typeof BODY_KINDS)[number];
/** What an agent sends; what the coordinator's session decodes after the handshake. */
export const AGENT_KINDS: readonly Kind[] = ["hello", "heartbeat", "commandResult", "event", "artifactRequest", "logLines"];
/** What a coordinator sends; what the agent's link decodes. */
export const COORDINATOR_KINDS: readonly Kind[] = ["challenge", "welcome", "refusal", "command", "artifactChunk"];

/** Envelope field numbers of each body kind (envelope.proto). */
const FIELD: Record<Kind, number> = {
  challenge: 10,
  hello: 11,
  welcome: 12,
  refusal: 13,
  heartbeat: 14,
  command: 15,
  commandResult: 16,
  event: 17,
  artifactRequest: 18,
  artifactChunk: 19,
  logLines: 20,
};

/** A program path that cannot exist, for run.command: a fuzzed Deploy that got through must not run anything real. */
export const NO_SUCH_PROGRAM = "/nonexistent/cutover-fuzz/app";

export interface Frame {
  bytes: Uint8Array;
  /** How the frame was made, e.g. "valid:hello" or "truncate(bitflip(valid:heartbeat))". */
  recipe: string;
}

// ---------------------------------------------------------------- wire helpers

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Base-128 varint of a non-negative integer (numbers up to 2^64 through bigint). */
export function varint(value: number | bigint): Uint8Array {
  if (typeof value === "number" && value >= 0 && value < 2 ** 31) {
    const out: number[] = [];
    let n = value;
    while (n > 0x7f) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return Uint8Array.from(out);
  }
  let v = BigInt(value);
  const out: number[] = [];
  while (v > 0x7fn) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

export function tag(field: number, wireType: number): Uint8Array {
  return varint(BigInt(field) * 8n + BigInt(wireType));
}

/** A length-delimited field: tag, length, payload. */
export function lenField(field: number, payload: Uint8Array): Uint8Array {
  return concatBytes(tag(field, 2), varint(payload.length), payload);
}

function repeatBytes(unit: Uint8Array, times: number): Uint8Array {
  const out = new Uint8Array(unit.length * times);
  for (let i = 0; i < times; i++) out.set(unit, i * unit.length);
  return out;
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

function readVarint(buf: Uint8Array, pos: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) return undefined;
    const b = buf[pos + i]!;
    value += (b & 0x7f) * 2 ** (7 * i);
    if ((b & 0x80) === 0) return { value, next: pos + i + 1 };
  }
  return undefined;
}

/** A length-delimited field found in a frame (best effort: scanning stops at the first thing that does not parse). */
interface LenSpan {
  tagStart: number;
  lenStart: number;
  dataStart: number;
  dataEnd: number;
  depth: number;
}

/** Field starts (at every depth) and length-delimited spans, for mutations that aim at structure. */
function scan(buf: Uint8Array): { spans: LenSpan[]; starts: number[] } {
  const spans: LenSpan[] = [];
  const starts: number[] = [];
  const walk = (start: number, end: number, depth: number): void => {
    let pos = start;
    while (pos < end && starts.length < 512) {
      const tagStart = pos;
      const t = readVarint(buf, pos, end);
      if (!t || t.value < 8) return;
      pos = t.next;
      starts.push(tagStart);
      switch (t.value % 8) {
        case 0: {
          const v = readVarint(buf, pos, end);
          if (!v) return;
          pos = v.next;
          break;
        }
        case 1:
          pos += 8;
          break;
        case 5:
          pos += 4;
          break;
        case 2: {
          const len = readVarint(buf, pos, end);
          if (!len) return;
          const dataEnd = len.next + len.value;
          if (dataEnd > end) return;
          spans.push({ tagStart, lenStart: pos, dataStart: len.next, dataEnd, depth });
          if (depth < 5) walk(len.next, dataEnd, depth + 1);
          pos = dataEnd;
          break;
        }
        default:
          return;
      }
    }
  };
  walk(0, buf.length, 0);
  return { spans, starts };
}

function replaceRange(buf: Uint8Array, from: number, to: number, insert: Uint8Array): Uint8Array {
  return concatBytes(buf.subarray(0, from), insert, buf.subarray(to));
}

// ------------------------------------------------------------- valid messages

const SAFE_ASCII = "abcdefghijklmnopqrstuvwxyz0123456789.-_";
const WILD_STRINGS = ["", " ", "..", "../../etc/passwd", "/", "__proto__", "constructor", "toString", "\u0000", "é", "🙂", "a\nb", "%s%n", "${PORT}", "x".repeat(64)];

/** Per-run knobs: live targets keep frames small, the pure decoder target allows huge ones. */
export interface GenOptions {
  /** Probability that a string is large (1 KiB .. maxLargeString). */
  largeStringChance: number;
  maxLargeString: number;
  /** "Now" for timestamps and deadlines: fixed for the decoder corpus (frames must be rebuildable), the clock for live targets. */
  now: () => number;
  /** Probability that a field with a sensible value gets an arbitrary one instead. */
  wildness: number;
}

/** A fixed instant (2026-09-21) so decoder frames do not depend on the clock. */
const FIXED_NOW = 1_790_000_000_000;
export const DECODER_GEN: GenOptions = { largeStringChance: 0.001, maxLargeString: MAX_FRAME_BYTES + 4096, now: () => FIXED_NOW, wildness: 0.25 };
export const LIVE_GEN: GenOptions = { largeStringChance: 0.002, maxLargeString: 16 * 1024, now: Date.now, wildness: 0.25 };
/** Frames that nearly always pass the decoder's checks, for sessions meant to reach the code behind it. */
export const TAME_GEN: GenOptions = { ...LIVE_GEN, wildness: 0.01 };

class Values {
  constructor(readonly r: Rng, readonly o: GenOptions) {}

  name(): string {
    const n = this.r.int(1, 20);
    let s = SAFE_ASCII[this.r.below(36)]!;
    for (let i = 1; i < n; i++) s += SAFE_ASCII[this.r.below(SAFE_ASCII.length)]!;
    return s;
  }

  str(): string {
    const r = this.r;
    if (r.chance(this.o.largeStringChance)) return "L".repeat(r.int(1024, this.o.maxLargeString));
    return r.weighted<() => string>([
      [3, () => ""],
      [5, () => this.name()],
      [2, () => r.pick(WILD_STRINGS)],
      [1, () => String.fromCodePoint(...Array.from({ length: r.int(1, 12) }, () => r.pick([r.int(0x20, 0x7e), r.int(0x80, 0x7ff), r.int(0x800, 0xd7ff), r.int(0x10000, 0x10ffff)])))],
      [0.3, () => "y".repeat(r.int(100, 4000))],
    ])();
  }

  /** Usually the sensible value, sometimes anything. */
  maybe<T>(sensible: () => T, wild: () => T, wildness = this.o.wildness): T {
    return this.r.chance(wildness) ? wild() : sensible();
  }

  bytes(usual: number): Uint8Array {
    return this.maybe(
      () => this.r.bytes(usual),
      () => this.r.bytes(this.r.pick([0, 1, usual - 1, usual + 1, this.r.int(0, 300)])),
    );
  }

  u32(usual: () => number): number {
    return this.maybe(usual, () => this.r.uint32());
  }

  u53(usual: () => number): number {
    return this.maybe(usual, () => this.r.uint53());
  }

  list<T>(make: () => T, max = 4): T[] {
    return Array.from({ length: this.r.chance(0.05) ? this.r.int(5, 60) : this.r.int(0, max) }, make);
  }

  map(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const _ of this.list(() => 0, 3)) out[this.maybe(() => this.name(), () => this.str())] = this.str();
    return out;
  }

  sha(): string {
    return this.maybe(
      () => Array.from(this.r.bytes(32), (b) => b.toString(16).padStart(2, "0")).join(""),
      () => this.str(),
    );
  }

  resources(): cutover.v1.Resources.$Properties {
    const r = this.r;
    return {
      cpuLoadPercent: this.maybe(() => r.next() * 100, () => r.double()),
      memTotalBytes: this.u53(() => 2 ** 33),
      memAvailableBytes: this.u53(() => 2 ** 32),
      disks: this.list(() => ({ path: this.str(), mount: this.str(), freeBytes: r.uint53(), totalBytes: r.uint53() }), 2),
      load1: r.double(),
      load5: r.double(),
      load15: r.double(),
      cpuCount: this.u32(() => r.int(1, 64)),
      sampledAtUnixMs: this.u53(() => this.o.now()),
    };
  }

  instance(): cutover.v1.AppInstance.$Properties {
    const r = this.r;
    return {
      app: this.str(),
      color: this.maybe(() => r.pick(["blue", "green", "main"]), () => this.str()),
      release: this.str(),
      port: this.u32(() => r.int(1024, 65535)),
      state: this.maybe(() => r.pick(["starting", "healthy", "unhealthy", "draining", "stopped", "crashed"]), () => this.str()),
      pid: r.uint32(),
      live: r.chance(0.5),
      rssBytes: r.uint53(),
    };
  }

  definition(): cutover.v1.AppDefinition.$Properties {
    const r = this.r;
    return {
      name: this.maybe(() => this.name(), () => this.str()),
      run: {
        command: [NO_SUCH_PROGRAM, ...this.list(() => this.str(), 3)],
        env: this.map(),
        user: this.maybe(() => "", () => this.str()),
        stopSignal: this.maybe(() => "SIGTERM", () => this.str()),
        stopTimeoutMs: this.u53(() => 1000),
      },
      bluePort: this.u32(() => r.int(20000, 40000)),
      greenPort: this.u32(() => r.int(40001, 60000)),
      proxy: { listenPort: this.u32(() => r.int(10000, 19999)), protocol: this.maybe(() => r.pick(["http", "tcp"]), () => this.str()), directives: this.list(() => this.str(), 2) },
      health: {
        kind: this.maybe(() => "http", () => this.str()),
        path: this.str(),
        expectStatus: this.u32(() => 200),
        intervalMs: this.u32(() => 100),
        timeoutMs: this.u32(() => 500),
        healthyThreshold: this.u32(() => 1),
        deadlineMs: this.u32(() => 2000),
      },
      keepPreviousMs: r.uint53(),
      limits: { memoryBytes: r.uint53(), cpuCores: r.double() },
      needs: { minFreeMemoryBytes: r.uint53(), minFreeDiskBytes: r.uint53(), maxLoad: r.double() },
    };
  }

  lbSite(): cutover.v1.LbSite.$Properties {
    const r = this.r;
    return {
      app: this.str(),
      listenPort: r.uint32(),
      backends: this.list(() => ({ host: this.str(), address: this.str(), port: r.uint32(), weight: r.uint32(), state: this.maybe(() => r.pick(["up", "drain", "down"]), () => this.str()), group: this.str() }), 3),
      canary: r.chance(0.5) ? { cookie: this.str(), weightPercent: r.uint32(), pinKind: this.str(), pinName: this.str(), pinValue: this.str() } : null,
    };
  }

  deadline(): number {
    return this.maybe(() => this.o.now() + this.r.int(-1000, 60_000), () => this.r.uint53());
  }

  command(): cutover.v1.Command.$Properties {
    const r = this.r;
    const base: cutover.v1.Command.$Properties = {
      commandId: this.maybe(() => `c-${r.uint32()}`, () => this.str()),
      deadlineUnixMs: this.deadline(),
      sequence: r.uint53(),
      signature: this.bytes(SIGNATURE_BYTES),
      // Set inside `signed` by a real coordinator; here sometimes on the outer frame too (an agent must ignore them there).
      ...(r.chance(0.3) && { hostId: this.maybe(() => `h-${r.uint32()}`, () => this.str()), sessionNonce: this.bytes(NONCE_BYTES) }),
    };
    // A signed command carries its encoded self in `signed`: here (unverifiable) bytes of some other command, or nothing.
    if (r.chance(0.6))
      base.signed = r.chance(0.7)
        ? v1.Command.encode({ commandId: base.commandId, deadlineUnixMs: base.deadlineUnixMs, sequence: r.uint53(), hostId: this.maybe(() => `h-${r.uint32()}`, () => this.str()), sessionNonce: this.bytes(NONCE_BYTES), ping: { payload: this.str() } }).finish()
        : this.bytes(40);
    const op = r.pick(["ping", "ping", "deploy", "rollback", "applyLb", "waitDrained", "tailLogs", "stopLogs", "none"] as const);
    switch (op) {
      case "ping":
        return { ...base, ping: { payload: this.str() } };
      case "deploy":
        return { ...base, deploy: { app: this.definition(), release: this.maybe(() => `v${r.int(1, 99)}`, () => this.str()), artifact: r.chance(0.5) ? { sha256: this.sha(), sizeBytes: r.uint53() } : null, inPlace: r.chance(0.3) } };
      case "rollback":
        return { ...base, rollback: { app: this.str(), inPlace: r.chance(0.3) } };
      case "applyLb":
        return { ...base, applyLb: { site: this.lbSite() } };
      case "waitDrained":
        return { ...base, waitDrained: { app: this.str(), hosts: this.list(() => this.str()), timeoutMs: r.uint32() } };
      case "tailLogs":
        return { ...base, tailLogs: { streamId: this.str(), app: this.str(), agentLog: r.chance(0.3), lines: this.u32(() => r.int(0, 200)), follow: r.chance(0.3) } };
      case "stopLogs":
        return { ...base, stopLogs: { streamId: this.str() } };
      case "none":
        return base;
    }
  }

  commandResult(): cutover.v1.CommandResult.$Properties {
    const r = this.r;
    const base: cutover.v1.CommandResult.$Properties = {
      commandId: this.maybe(() => `c-${r.uint32()}`, () => this.str()),
      status: this.maybe(() => r.int(1, 5), () => r.uint32() & 0x7fffffff),
      errorCode: this.str(),
      message: this.str(),
      durationMs: r.uint32(),
    };
    switch (r.pick(["pong", "deployed", "lbApplied", "drained", "none"] as const)) {
      case "pong":
        return { ...base, pong: { payload: this.str() } };
      case "deployed":
        return {
          ...base,
          deployed: { app: this.str(), release: this.str(), liveColor: this.str(), previousRelease: this.str(), switchMs: r.double(), bootMs: r.double(), totalMs: r.double(), unchanged: r.chance(0.5), handoverMs: r.double() },
        };
      case "lbApplied":
        return { ...base, lbApplied: { durationMs: r.double(), reloaded: r.chance(0.5), mode: this.str() } };
      case "drained":
        return { ...base, drained: { drained: r.chance(0.5), inFlight: r.uint32(), waitedMs: r.double() } };
      case "none":
        return base;
    }
  }

  envelope(kind: Kind): EnvelopeInit {
    const r = this.r;
    switch (kind) {
      case "challenge":
        return { challenge: { nonce: this.bytes(NONCE_BYTES), protocolVersion: this.u32(() => PROTOCOL_VERSION) } };
      case "hello":
        return {
          hello: {
            protocolVersion: this.u32(() => PROTOCOL_VERSION),
            name: this.maybe(() => this.name(), () => this.str()),
            publicKey: this.bytes(PUBLIC_KEY_BYTES),
            signature: this.bytes(SIGNATURE_BYTES),
            enrollmentToken: this.maybe(() => "", () => this.str()),
            hostname: this.str(),
            agentVersion: this.str(),
            address: this.maybe(() => "127.0.0.1", () => this.str()),
            labels: this.map(),
            capabilities: this.list(() => this.str()),
            resources: r.chance(0.8) ? this.resources() : null,
            instances: this.list(() => this.instance(), 2),
          },
        };
      case "welcome":
        return {
          welcome: {
            hostId: this.maybe(() => this.name(), () => this.str()),
            heartbeatIntervalMs: this.u32(() => r.int(100, 10_000)),
            protocolVersion: this.u32(() => PROTOCOL_VERSION),
            enrolled: r.chance(0.5),
            coordinatorPublicKey: this.bytes(PUBLIC_KEY_BYTES),
            // Random bytes, which verify over no session's WelcomeProof: an agent refuses such a Welcome.
            signature: this.bytes(SIGNATURE_BYTES),
          },
        };
      case "refusal":
        return { refusal: { code: this.maybe(() => r.pick(Object.values(RefusalCode)), () => this.str()), message: this.str(), permanent: this.maybe(() => false, () => r.chance(0.5)) } };
      case "heartbeat":
        return { heartbeat: { resources: this.maybe(() => this.resources(), () => null), instances: this.list(() => this.instance(), 3) } };
      case "command":
        return { command: this.command() };
      case "commandResult":
        return { commandResult: this.commandResult() };
      case "event":
        return { event: { commandId: this.str(), atUnixMs: this.u53(() => this.o.now()), kind: this.maybe(() => r.pick(["step", "process.exit", "health.change", "nginx"]), () => this.str()), app: this.str(), color: this.str(), message: this.str(), step: this.str() } };
      case "artifactRequest":
        return { artifactRequest: { requestId: this.maybe(() => String(r.uint32()), () => this.str()), sha256: this.sha(), offset: r.uint53(), length: this.u32(() => r.int(1, MAX_ARTIFACT_CHUNK)) } };
      case "artifactChunk":
        return {
          artifactChunk: {
            requestId: this.maybe(() => String(r.int(1, 50)), () => this.str()),
            sha256: this.sha(),
            offset: r.uint53(),
            data: this.maybe(() => r.bytes(r.int(0, 256)), () => r.bytes(r.int(0, 64 * 1024)), this.o.wildness / 5),
            totalSize: r.uint53(),
            error: this.maybe(() => "", () => this.str()),
          },
        };
      case "logLines":
        return { logLines: { streamId: this.maybe(() => `s-${r.uint32()}`, () => this.str()), source: this.str(), lines: this.list(() => this.str(), 5) } };
    }
  }
}

/** Encodes through the product's encoder; frames it refuses as too large are built with the raw generated encoder on purpose. */
function encode(envelope: EnvelopeInit): Uint8Array {
  try {
    return encodeEnvelope(envelope);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    return v1.Envelope.encode(envelope).finish();
  }
}

/** One well-formed envelope of `kind` (required fields usually sensible, sometimes not). */
export function validFrame(r: Rng, kind: Kind, options: GenOptions = DECODER_GEN): Frame {
  return { bytes: encode(new Values(r, options).envelope(kind)), recipe: `valid:${kind}` };
}

// ------------------------------------------------------------------ mutations

type Mutator = (r: Rng, frame: Uint8Array, other: () => Uint8Array) => Uint8Array;

/** Overlong and overflowing varints (the decoder reads at most 10 bytes; 64-bit overflow). */
const BAD_VARINTS = [
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
  Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f),
  Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
  Uint8Array.of(0x80),
  Uint8Array.of(0xff),
];

const HUGE_LENGTHS = [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 28, 2 ** 53, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, 2n ** 64n - 1n] as const;

function position(r: Rng, frame: Uint8Array): number {
  return r.below(frame.length + 1);
}

function aSpan(r: Rng, frame: Uint8Array): LenSpan | undefined {
  const { spans } = scan(frame);
  return spans.length ? r.pick(spans) : undefined;
}

function aBoundary(r: Rng, frame: Uint8Array): number {
  const { starts } = scan(frame);
  return r.chance(0.8) && starts.length ? r.pick([...starts, frame.length]) : position(r, frame);
}

function setLength(frame: Uint8Array, span: LenSpan, length: number | bigint): Uint8Array {
  return replaceRange(frame, span.lenStart, span.dataStart, varint(length));
}

/** A tag with a random field number and wire type (0–7; 6 and 7 do not exist), and a payload to match. */
function unknownField(r: Rng): Uint8Array {
  const field = r.weighted<() => number>([
    [3, () => r.int(1, 20)],
    [2, () => r.int(21, 2000)],
    [1, () => r.pick([99, 536870911, 536870910, 19000, 19999])],
  ])();
  const wire = r.int(0, 7);
  const payload = ((): Uint8Array => {
    switch (wire) {
      case 0:
        return r.chance(0.2) ? r.pick(BAD_VARINTS) : varint(r.uint53());
      case 1:
        return r.bytes(8);
      case 2:
        return r.chance(0.1) ? varint(r.pick(HUGE_LENGTHS)) : concatBytes(varint(r.int(0, 40)), r.bytes(r.int(0, 40)));
      case 5:
        return r.bytes(4);
      case 3:
        return r.chance(0.5) ? tag(field, 4) : new Uint8Array(0);
      default:
        return r.bytes(r.int(0, 4));
    }
  })();
  return concatBytes(tag(field, wire), payload);
}

export const MUTATIONS: Record<string, Mutator> = {
  bitflip(r, f) {
    if (!f.length) return Uint8Array.of(r.below(256));
    const out = f.slice();
    for (let i = r.int(1, 8); i > 0; i--) out[r.below(out.length)]! ^= 1 << r.below(8);
    return out;
  },
  interestingByte(r, f) {
    if (!f.length) return Uint8Array.of(0);
    const out = f.slice();
    for (let i = r.int(1, 4); i > 0; i--) out[r.below(out.length)] = r.pick([0x00, 0x01, 0x07, 0x08, 0x0a, 0x12, 0x7f, 0x80, 0xfe, 0xff]);
    return out;
  },
  insertBytes(r, f) {
    const at = position(r, f);
    return replaceRange(f, at, at, r.bytes(r.int(1, 16)));
  },
  deleteRange(r, f) {
    if (!f.length) return f;
    const at = r.below(f.length);
    return replaceRange(f, at, Math.min(f.length, at + r.int(1, 16)), new Uint8Array(0));
  },
  truncate(r, f) {
    return f.slice(0, r.below(f.length + 1));
  },
  duplicateRange(r, f) {
    if (!f.length) return f;
    const from = r.below(f.length);
    const piece = f.slice(from, from + r.int(1, 64));
    const at = position(r, f);
    return replaceRange(f, at, at, piece);
  },
  splice(r, f, other) {
    const b = other();
    return concatBytes(f.subarray(0, position(r, f)), b.subarray(position(r, b)));
  },
  /** Two frames back to back: a second oneof body, merged fields, repeated fields. */
  concat(r, f, other) {
    return r.chance(0.5) ? concatBytes(f, other()) : concatBytes(other(), f);
  },
  varintOverflow(r, f) {
    const bad = r.pick(BAD_VARINTS);
    const span = r.chance(0.5) ? aSpan(r, f) : undefined;
    if (span) return replaceRange(f, span.lenStart, span.dataStart, bad);
    const at = aBoundary(r, f);
    // At a field start: a tag that overflows; elsewhere: garbage inside a value.
    return replaceRange(f, at, at, r.chance(0.5) ? bad : concatBytes(tag(r.int(1, 20), 0), bad));
  },
  lengthPastEnd(r, f) {
    const span = aSpan(r, f);
    if (!span) return concatBytes(f, tag(r.int(1, 20), 2), varint(r.int(1, 100)));
    return setLength(f, span, f.length - span.dataStart + r.int(1, 1000));
  },
  hugeLength(r, f) {
    const span = aSpan(r, f);
    const huge = r.pick(HUGE_LENGTHS);
    if (!span) return concatBytes(f, tag(r.pick([11, 14, 99]), 2), varint(huge));
    return setLength(f, span, huge);
  },
  lengthShrink(r, f) {
    const span = aSpan(r, f);
    if (!span || span.dataEnd === span.dataStart) return f;
    return setLength(f, span, r.below(span.dataEnd - span.dataStart));
  },
  unknownField(r, f) {
    const at = aBoundary(r, f);
    return replaceRange(f, at, at, unknownField(r));
  },
  wireTypeSwap(r, f) {
    const { starts } = scan(f);
    if (!starts.length) return f;
    const at = r.pick(starts);
    const out = f.slice();
    out[at] = (out[at]! & ~7) | r.int(0, 7);
    return out;
  },
  fieldZero(r, f) {
    const at = aBoundary(r, f);
    return replaceRange(f, at, at, r.pick([Uint8Array.of(0x00), Uint8Array.of(0x02, 0x00), Uint8Array.of(0x03), Uint8Array.of(0x04)]));
  },
  invalidUtf8(r, f) {
    const spans = scan(f).spans.filter((s) => s.dataEnd > s.dataStart);
    if (!spans.length) return f;
    const s = r.pick(spans);
    const bad = r.pick([Uint8Array.of(0xff), Uint8Array.of(0xc0, 0x80), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xf4, 0x90, 0x80, 0x80), Uint8Array.of(0xe2, 0x82)]);
    const at = r.int(s.dataStart, Math.max(s.dataStart, s.dataEnd - bad.length));
    const out = f.slice();
    out.set(bad.subarray(0, Math.min(bad.length, out.length - at)), at);
    return out;
  },
  /** A nested length-delimited field repeated in place, with every enclosing length fixed: a valid frame with many more elements. */
  repeatNested(r, f) {
    const { spans } = scan(f);
    if (!spans.length) return f;
    const s = r.pick(spans);
    const unit = f.subarray(s.tagStart, s.dataEnd);
    const times = Math.min(r.int(2, 100), Math.floor((16 * 1024) / Math.max(1, unit.length)));
    let out = replaceRange(f, s.tagStart, s.dataEnd, repeatBytes(unit, Math.max(1, times)));
    const grow = out.length - f.length;
    // Enclosing spans (start before, end after this one), innermost last in scan order: fix from the inside out.
    const parents = spans.filter((p) => p.dataStart <= s.tagStart && p.dataEnd >= s.dataEnd && p !== s).sort((a, b) => b.depth - a.depth);
    for (const p of parents) {
      const before = out.length;
      out = replaceRange(out, p.lenStart, p.dataStart, varint(p.dataEnd - p.dataStart + grow));
      if (out.length !== before) return out; // a length varint changed size; outer lengths are now off, which is fuzz too.
    }
    return out;
  },
};

const MUTATION_NAMES = Object.keys(MUTATIONS);

// ------------------------------------------------------- pathological shapes

/** Nested start-group tags: the only unbounded recursion in the wire format. */
function deepGroups(r: Rng): Frame {
  const depth = r.pick([50, 99, 100, 101, 150, r.int(1000, 60_000)]);
  const field = r.pick([11, 14, 99, 1]);
  const open = repeatBytes(tag(field, 3), depth);
  const close = r.chance(0.5) ? repeatBytes(tag(field, 4), depth) : new Uint8Array(0);
  // Either the whole frame is the group, or it sits inside a known body (an unknown field of Hello).
  const groups = concatBytes(open, close);
  const bytes = r.chance(0.5) ? groups : lenField(FIELD.hello, groups);
  return { bytes, recipe: `deepGroups(${depth})` };
}

/** Length-delimited unknown fields nested inside each other (skipped without recursion). */
function deepLen(r: Rng): Frame {
  const payload = r.bytes(r.int(0, 8));
  const depth = r.int(10, 1000);
  // Headers from the inside out, then one copy: nesting by concatenation would be quadratic.
  const headers: Uint8Array[] = [];
  let length = payload.length;
  for (let i = 0; i < depth; i++) {
    const header = concatBytes(tag(99, 2), varint(length));
    headers.push(header);
    length += header.length;
  }
  return { bytes: concatBytes(...headers.reverse(), payload), recipe: `deepLen(${depth})` };
}

/** Heartbeat.resources, empty: what makes a Heartbeat pass the decoder's checks. */
const HEARTBEAT_REQUIRED = lenField(1, new Uint8Array(0));
/** Hello's required fields (version 1, name "fuzz", zero key and signature): passes the decoder's checks, not authentication. */
const HELLO_REQUIRED = concatBytes(tag(1, 0), varint(1), lenField(2, Uint8Array.of(0x66, 0x75, 0x7a, 0x7a)), lenField(3, new Uint8Array(32)), lenField(4, new Uint8Array(64)));

/** Paths of repeated fields: [envelope field, ...nesting, repeated field] and one element's payload. */
const REPEATED: { name: string; path: number[]; element: (r: Rng) => Uint8Array; prefix?: Uint8Array }[] = [
  { name: "heartbeat.instances", path: [14, 2], element: () => new Uint8Array(0), prefix: HEARTBEAT_REQUIRED },
  { name: "heartbeat.resources.disks", path: [14, 1, 4], element: () => new Uint8Array(0) },
  { name: "hello.capabilities", path: [11, 10], element: () => new Uint8Array(0), prefix: HELLO_REQUIRED },
  { name: "hello.instances", path: [11, 12], element: () => new Uint8Array(0) },
  { name: "hello.labels", path: [11, 9], element: (r) => lenField(1, ascii(`k${r.uint32()}`)) },
  { name: "command.applyLb.site.backends", path: [15, 13, 1, 3], element: () => new Uint8Array(0) },
  { name: "command.waitDrained.hosts", path: [15, 14, 2], element: () => Uint8Array.of(0x61) },
  { name: "command.deploy.app.run.command", path: [15, 11, 1, 2, 1], element: () => Uint8Array.of(0x61) },
  { name: "command.deploy.app.run.env", path: [15, 11, 1, 2, 2], element: (r) => lenField(1, ascii(`E${r.uint32()}`)) },
  { name: "envelope.hello", path: [11], element: () => new Uint8Array(0) },
  { name: "logLines.lines", path: [20, 3], element: () => Uint8Array.of(0x61), prefix: lenField(1, Uint8Array.of(0x73)) },
];

/** Map entries with distinct keys are built one by one; this caps that cost. */
const MAX_DISTINCT = 500;

/** Many elements of one repeated field: the decoder's allocation per input byte. */
function repeated(r: Rng, maxCount: number): Frame {
  const shape = r.pick(REPEATED);
  const count = Math.max(1, Math.floor(Math.exp(r.next() * Math.log(maxCount))));
  const field = shape.path[shape.path.length - 1]!;
  // Distinct map keys need distinct elements; other shapes repeat one element.
  const distinct = shape.name.endsWith("labels") || shape.name.endsWith("env");
  let body: Uint8Array = distinct
    ? concatBytes(...Array.from({ length: Math.min(count, MAX_DISTINCT) }, () => lenField(field, shape.element(r))))
    : repeatBytes(lenField(field, shape.element(r)), count);
  for (let i = shape.path.length - 2; i >= 0; i--) body = lenField(shape.path[i]!, i === 0 && shape.prefix ? concatBytes(shape.prefix, body) : body);
  return { bytes: body, recipe: `repeated(${shape.name} x${distinct ? Math.min(count, MAX_DISTINCT) : count})` };
}

/** The worst-case allocation per byte: one maximum-size frame of empty repeated sub-messages. */
export function worstCaseRepeated(shape = "heartbeat.instances", bytes = MAX_FRAME_BYTES): Uint8Array {
  const s = REPEATED.find((x) => x.name === shape)!;
  const unit = lenField(s.path[s.path.length - 1]!, new Uint8Array(0));
  // Leave room for the required fields and the enclosing tags and lengths (≤ 6 bytes per level).
  const prefix = s.prefix ?? new Uint8Array(0);
  const count = Math.floor((bytes - prefix.length - 6 * s.path.length) / unit.length);
  let body = repeatBytes(unit, count);
  for (let i = s.path.length - 2; i >= 0; i--) body = lenField(s.path[i]!, i === 0 ? concatBytes(prefix, body) : body);
  return body;
}

function randomBytes(r: Rng, maxLength: number): Frame {
  const length = r.weighted<() => number>([
    [1, () => 0],
    [6, () => r.int(1, 16)],
    [4, () => r.int(17, 512)],
    [0.3, () => r.int(513, Math.min(maxLength, 64 * 1024))],
    [0.02, () => r.pick([MAX_FRAME_BYTES - 1, MAX_FRAME_BYTES, MAX_FRAME_BYTES + 1, MAX_FRAME_BYTES + r.int(2, 4096)])],
  ])();
  return { bytes: r.bytes(Math.min(length, maxLength)), recipe: `random(${Math.min(length, maxLength)})` };
}

// ---------------------------------------------------------------- the mix

export interface MixOptions {
  /** Body kinds the well-formed frames (and mutation bases) are drawn from. */
  kinds: readonly Kind[];
  gen: GenOptions;
  /** Largest frame produced; bigger ones are truncated (live targets) — the decoder target allows > MAX_FRAME_BYTES. */
  maxBytes: number;
  /** Most elements a `repeated` frame has. */
  maxRepeat: number;
}

export const DECODER_MIX: MixOptions = { kinds: BODY_KINDS, gen: DECODER_GEN, maxBytes: MAX_FRAME_BYTES + 8192, maxRepeat: 5_000 };

/** One fuzz frame: well-formed, mutated (1–4 stacked mutations), pathological, or random. */
export function fuzzFrame(r: Rng, mix: MixOptions = DECODER_MIX): Frame {
  const base = () => validFrame(r, r.pick(mix.kinds), mix.gen);
  const frame = r.weighted<() => Frame>([
    [15, base],
    [
      60,
      () => {
        let { bytes, recipe } = base();
        for (let n = r.weighted([[6, 1], [3, 2], [1, 3], [0.5, 4]] as const); n > 0; n--) {
          const name = r.pick(MUTATION_NAMES);
          bytes = MUTATIONS[name]!(r, bytes, () => base().bytes);
          recipe = `${name}(${recipe})`;
        }
        return { bytes, recipe };
      },
    ],
    [10, () => randomBytes(r, mix.maxBytes)],
    [3, () => repeated(r, mix.maxRepeat)],
    [2, () => deepGroups(r)],
    [1, () => deepLen(r)],
    [0.01, () => ({ bytes: worstCaseRepeated(r.pick(REPEATED).name, r.pick([MAX_FRAME_BYTES, MAX_FRAME_BYTES + 2])), recipe: "worstCaseRepeated" })],
  ])();
  if (frame.bytes.length > mix.maxBytes) return { bytes: frame.bytes.subarray(0, mix.maxBytes), recipe: `cap(${frame.recipe})` };
  return frame;
}

/** Frame `index` of the decoder corpus for `seed`: each frame has its own sub-seed, so any one can be rebuilt alone. */
export function decoderFrameAt(seed: number, index: number): Frame {
  return fuzzFrame(new Rng(subSeed(seed, "decoder", index)), DECODER_MIX);
}

/** Short hex of a frame for failure messages (first bytes and length). */
export function describeFrame(frame: Frame, max = 96): string {
  const hex = Buffer.from(frame.bytes.subarray(0, max)).toString("hex");
  return `${frame.recipe} (${frame.bytes.length} bytes): ${hex}${frame.bytes.length > max ? "…" : ""}`;
}
