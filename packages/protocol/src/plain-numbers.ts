import $protobuf from "protobufjs/minimal.js";

// 64-bit fields carry byte counts and Unix milliseconds, all far below 2^53:
// decode them as plain numbers, not Long objects. This must run before the
// generated code is evaluated, because it bakes Long defaults into prototypes;
// frame.ts imports this module first for that reason.
$protobuf.util.Long = undefined as unknown as typeof $protobuf.util.Long;
$protobuf.configure();
