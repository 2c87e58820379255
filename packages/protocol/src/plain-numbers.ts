import $protobuf from "protobufjs/minimal.js";

// 64-bit fields carry byte counts and Unix milliseconds, all far below 2^53:
// decode them as plain numbers, not Long objects. This must run before the
// generated code is evaluated, because it bakes Long defaults into prototypes;
// frame.ts imports this module first for that reason.
$protobuf.util.Long = undefined as unknown as typeof $protobuf.util.Long;
$protobuf.configure();

// ...and refuse one that is not: a number cannot hold it exactly (2^64-1 rounds to 2^64,
// which re-encodes as 0), so a frame carrying it is malformed for this protocol. The
// decoder's caller (frame.ts, decodeEnvelope) turns the throw into ERR_DECODE_FAILED.
for (const name of ["uint64", "int64", "sint64", "fixed64", "sfixed64"] as const) {
  const read = $protobuf.Reader.prototype[name] as unknown as (this: $protobuf.Reader) => number;
  ($protobuf.Reader.prototype as unknown as Record<string, () => number>)[name] = function (this: $protobuf.Reader): number {
    const value = read.call(this);
    if (!Number.isSafeInteger(value)) throw new RangeError(`${name} ${value} is beyond 2^53-1, what a number holds exactly`);
    return value;
  };
}
