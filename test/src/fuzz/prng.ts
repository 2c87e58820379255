/**
 * A small seeded PRNG for the protocol fuzzer. Every random choice of a fuzz
 * run comes from here, so a seed reproduces the run exactly.
 *
 * Seed policy: `CUTOVER_FUZZ_SEED` (decimal or 0x-hex, 32-bit) pins the run;
 * without it each run draws a fresh seed and prints it in the test titles and
 * logs. Fresh seeds keep exploring new frames on every `npm test`; a failure
 * names its seed (and, for the decoder, the frame index), so it can be replayed
 * with `CUTOVER_FUZZ_SEED=<seed>`. Cases found once are kept as fixed
 * regression frames in the tests, so they run whatever the seed.
 */
import { randomInt } from "node:crypto";

/** The run's seed: CUTOVER_FUZZ_SEED, else a fresh one per run. */
export function runSeed(env: string | undefined = process.env.CUTOVER_FUZZ_SEED): number {
  if (env !== undefined && env.trim() !== "") {
    const value = Number(env.trim());
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new Error(`CUTOVER_FUZZ_SEED must be an integer 0..2^32-1, got ${JSON.stringify(env)}`);
    }
    return value >>> 0;
  }
  return randomInt(0, 0x1_0000_0000) >>> 0;
}

/** A 32-bit hash (FNV-1a then avalanche) that derives independent sub-seeds: `subSeed(seed, "decoder", 17)`. */
export function subSeed(seed: number, ...parts: (string | number)[]): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const part of parts) {
    const text = `/${part}`;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32: tiny, fast, good enough to pick mutations; not for cryptography. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  below(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  /** Picks by weight: `weighted([[3, "a"], [1, "b"]])`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [w] of choices) total += w;
    let r = this.next() * total;
    for (const [w, value] of choices) {
      r -= w;
      if (r < 0) return value;
    }
    return choices[choices.length - 1]![1];
  }

  /** A uint32, biased toward the edges (0, 1, 2^31, 2^32-1) half of the time. */
  uint32(): number {
    if (this.chance(0.5)) return this.pick([0, 1, 2, 127, 128, 255, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff]);
    return (this.next() * 4294967296) >>> 0;
  }

  /** A non-negative integer below 2^53 (protocol 64-bit fields are plain numbers), edge-biased. */
  uint53(): number {
    if (this.chance(0.4)) return this.pick([0, 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 1_790_000_000_000, 2 ** 53 - 1]);
    return Math.floor(this.next() * 2 ** 21) * 2 ** 32 + ((this.next() * 4294967296) >>> 0);
  }

  double(): number {
    if (this.chance(0.3)) return this.pick([0, -0, 1, -1, NaN, Infinity, -Infinity, Number.MAX_VALUE, Number.MIN_VALUE, 1e-300]);
    return (this.next() - 0.5) * 10 ** this.int(0, 20);
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const v = (this.next() * 4294967296) >>> 0;
      out[i] = v & 0xff;
      out[i + 1] = (v >>> 8) & 0xff;
      out[i + 2] = (v >>> 16) & 0xff;
      out[i + 3] = v >>> 24;
    }
    for (; i < n; i++) out[i] = this.below(256);
    return out;
  }
}
