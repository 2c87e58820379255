import test from "ava";
import { parseDuration, parseSize, resolveCount } from "./index.js";
import type { CountOrPercent } from "./index.js";

const durationIs = test.macro({
  exec(t, text: string, ms: number) {
    t.is(parseDuration(text), ms);
  },
  title: (_, text, ms) => `parseDuration("${text}") is ${ms}`,
});

test(durationIs, "250ms", 250);
test(durationIs, "1s", 1_000);
test(durationIs, "1.5s", 1_500);
test(durationIs, "10m", 600_000);
test(durationIs, "1h", 3_600_000);
test(durationIs, "1m30s", 90_000);
test(durationIs, "1h2m3s4ms", 3_723_004);
test(durationIs, "0s", 0);
test(durationIs, "0.0005s", 1); // rounds to whole milliseconds
test(durationIs, "596h", 2_145_600_000);

const durationRefused = test.macro({
  exec(t, text: unknown) {
    const error = t.throws(() => parseDuration(text as string), { instanceOf: RangeError });
    t.regex(error.message, /^invalid duration .*: expected a duration like "250ms"/);
  },
  title: (_, text) => `parseDuration refuses ${JSON.stringify(text)}`,
});

for (const bad of ["", "10", "s", "1.s", ".5s", "-1s", "1 s", " 1s", "1d", "1S", "30s1m", "1s1s", "1m1h", "ten s", "597h", "1e3ms"]) {
  test(durationRefused, bad);
}
test(durationRefused, 30);

const sizeIs = test.macro({
  exec(t, value: string | number, bytes: number) {
    t.is(parseSize(value), bytes);
  },
  title: (_, value, bytes) => `parseSize(${JSON.stringify(value)}) is ${bytes}`,
});

test(sizeIs, 512, 512);
test(sizeIs, "512", 512);
test(sizeIs, "512B", 512);
test(sizeIs, "256K", 262_144);
test(sizeIs, "256k", 262_144);
test(sizeIs, "256KB", 262_144);
test(sizeIs, "256KiB", 262_144);
test(sizeIs, "256M", 268_435_456);
test(sizeIs, "256MiB", 268_435_456);
test(sizeIs, "256MB", 268_435_456);
test(sizeIs, "1G", 1_073_741_824);
test(sizeIs, "1GiB", 1_073_741_824);
test(sizeIs, "1.5G", 1_610_612_736);
test(sizeIs, "1 GiB", 1_073_741_824);
test(sizeIs, "1T", 1_099_511_627_776);
test(sizeIs, "0", 0);

const sizeRefused = test.macro({
  exec(t, value: unknown) {
    const error = t.throws(() => parseSize(value as string), { instanceOf: RangeError });
    t.regex(error.message, /^invalid size .*: expected a size like 512 \(bytes\)/);
  },
  title: (_, value) => `parseSize refuses ${JSON.stringify(value)}`,
});

for (const bad of ["", "M", "1P", "1Mb", "1mb", "512iB", "-1", "1.5", "1,5G", "1GG", "lots"]) {
  test(sizeRefused, bad);
}
test(sizeRefused, -1);
test(sizeRefused, 1.5);
test(sizeRefused, true);

const count = (n: number): CountOrPercent => ({ kind: "count", count: n });
const percent = (p: number): CountOrPercent => ({ kind: "percent", percent: p });

const resolvesTo = test.macro({
  exec(t, countOrPercent: CountOrPercent, total: number, expected: number) {
    t.is(resolveCount(countOrPercent, total), expected);
  },
  title: (_, countOrPercent: CountOrPercent, total: number, expected: number) =>
    `resolveCount(${countOrPercent.kind === "count" ? countOrPercent.count : `${countOrPercent.percent}%`}, ${total}) is ${expected}`,
});

test(resolvesTo, count(2), 10, 2);
test(resolvesTo, count(20), 10, 10);
test(resolvesTo, count(1), 0, 0);
test(resolvesTo, percent(25), 4, 1);
test(resolvesTo, percent(25), 5, 2);
test(resolvesTo, percent(25), 8, 2);
test(resolvesTo, percent(10), 30, 3);
test(resolvesTo, percent(10), 3, 1);
test(resolvesTo, percent(1), 1, 1);
test(resolvesTo, percent(100), 7, 7);
test(resolvesTo, percent(50), 0, 0);
test(resolvesTo, percent(12.5), 8, 1);
test(resolvesTo, percent(33.4), 3, 2);

test("resolveCount refuses a total that is not a host count", (t) => {
  t.throws(() => resolveCount(count(1), -1), { instanceOf: RangeError, message: "invalid host total -1: expected an integer >= 0" });
  t.throws(() => resolveCount(count(1), 1.5), { instanceOf: RangeError });
});
