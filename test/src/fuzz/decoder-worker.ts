/**
 * Runs the decoder corpus in a worker thread, so the test can stop it if a
 * frame hangs the decoder (a synchronous loop cannot be interrupted from its
 * own thread) and cap its heap with resourceLimits (an allocation bomb kills
 * the worker, not the test). The index of the frame being decoded is kept in
 * shared memory: on a hang or a crash the test rebuilds that frame from the
 * seed and prints it.
 */
import { performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { parentPort, workerData } from "node:worker_threads";
import { decodeEnvelope, openSignedCommand, ProtocolError, v1, type cutover } from "@cutover/protocol";
import { decoderFrameAt } from "./frames.js";
import { exposeGc } from "./guard.js";

export interface DecoderJob {
  seed: number;
  count: number;
  /** Frames decoded before the baseline heap is taken (lets caches and JIT settle). */
  warmup: number;
  /** Int32Array: [0] index of the frame being decoded, [1] frames finished. */
  progress: SharedArrayBuffer;
}

export interface Slowest {
  index: number;
  ms: number;
  recipe: string;
  bytes: number;
}

export interface DecoderReport {
  frames: number;
  bytes: number;
  decoded: Record<string, number>;
  errors: Record<string, number>;
  /** Throws that were not ProtocolError: each one a bug. */
  unexpected: { index: number; error: string; recipe: string }[];
  /** The agent's second decoder: the same bytes as Command.signed (openSignedCommand), by outcome. */
  signedCommand: Record<string, number>;
  /** Decoded envelopes that do not survive encode → decode unchanged. */
  roundTrip: { index: number; problem: string; recipe: string }[];
  /** Mutation/shape families seen (outermost recipe name). */
  recipes: Record<string, number>;
  slowest: Slowest[];
  decodeMs: number;
  generateMs: number;
  gcExposed: boolean;
  heapBaselineBytes: number;
  heapAfterBytes: number;
  heapPeakBytes: number;
}

function family(recipe: string): string {
  return recipe.split(/[(:]/)[0]!;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function runDecoderJob(job: DecoderJob): DecoderReport {
  const progress = new Int32Array(job.progress);
  const gc = exposeGc();
  const report: DecoderReport = {
    frames: 0,
    bytes: 0,
    decoded: {},
    errors: {},
    unexpected: [],
    signedCommand: {},
    roundTrip: [],
    recipes: {},
    slowest: [],
    decodeMs: 0,
    generateMs: 0,
    gcExposed: gc !== undefined,
    heapBaselineBytes: 0,
    heapAfterBytes: 0,
    heapPeakBytes: 0,
  };
  const heap = () => getHeapStatistics().used_heap_size;
  for (let index = 0; index < job.count; index++) {
    if (index === job.warmup) {
      gc?.();
      report.heapBaselineBytes = heap();
    }
    const g0 = performance.now();
    const frame = decoderFrameAt(job.seed, index);
    const t0 = performance.now();
    report.generateMs += t0 - g0;
    Atomics.store(progress, 0, index);
    let outcome: string;
    let envelope: ReturnType<typeof decodeEnvelope> | undefined;
    try {
      envelope = decodeEnvelope(frame.bytes);
      outcome = `ok`;
    } catch (error) {
      if (error instanceof ProtocolError) {
        outcome = error.code;
      } else {
        outcome = "unexpected";
        if (report.unexpected.length < 20) report.unexpected.push({ index, error: String((error as Error)?.stack ?? error), recipe: frame.recipe });
      }
    }
    // The agent decodes Command.signed again after checking its signature: the same bytes through that path.
    try {
      openSignedCommand({ commandId: "fuzz", signed: frame.bytes } as cutover.v1.Command);
      report.signedCommand.ok = (report.signedCommand.ok ?? 0) + 1;
    } catch (error) {
      if (error instanceof ProtocolError) {
        report.signedCommand[error.code] = (report.signedCommand[error.code] ?? 0) + 1;
      } else if (report.unexpected.length < 20) {
        report.unexpected.push({ index, error: `openSignedCommand: ${String((error as Error)?.stack ?? error)}`, recipe: frame.recipe });
      }
    }
    const ms = performance.now() - t0;
    report.decodeMs += ms;
    Atomics.store(progress, 1, index + 1);
    report.frames++;
    report.bytes += frame.bytes.length;
    const fam = family(frame.recipe);
    report.recipes[fam] = (report.recipes[fam] ?? 0) + 1;
    if (envelope) {
      const body = envelope.body ?? "(unknown kind)";
      report.decoded[body] = (report.decoded[body] ?? 0) + 1;
      // What decodes must re-encode to a canonical frame that decodes to the same thing.
      try {
        const again = v1.Envelope.encode(envelope).finish();
        const second = decodeEnvelope(again);
        if (second.body !== envelope.body) throw new Error(`body ${String(envelope.body)} became ${String(second.body)}`);
        if (!sameBytes(v1.Envelope.encode(second).finish(), again)) throw new Error("re-encoding is not stable");
      } catch (error) {
        if (report.roundTrip.length < 20) report.roundTrip.push({ index, problem: String((error as Error).message ?? error), recipe: frame.recipe });
      }
    } else if (outcome !== "unexpected") {
      report.errors[outcome] = (report.errors[outcome] ?? 0) + 1;
    }
    if (report.slowest.length < 5 || ms > report.slowest[report.slowest.length - 1]!.ms) {
      report.slowest.push({ index, ms, recipe: frame.recipe.slice(0, 160), bytes: frame.bytes.length });
      report.slowest.sort((a, b) => b.ms - a.ms);
      report.slowest.length = Math.min(report.slowest.length, 5);
    }
    if (index % 2000 === 0) report.heapPeakBytes = Math.max(report.heapPeakBytes, heap());
  }
  report.heapPeakBytes = Math.max(report.heapPeakBytes, heap());
  gc?.();
  report.heapAfterBytes = heap();
  return report;
}

if (parentPort && workerData) {
  parentPort.postMessage(runDecoderJob(workerData as DecoderJob));
}
