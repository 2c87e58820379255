import test from "ava";
import { isLimitsError } from "./errors.js";
import { cpuMaxValue, cpuQuotaUs, formatBytes, memoryLimitValue } from "./values.js";

const MiB = 1024 * 1024;

test("a memory limit is written as its byte count", (t) => {
  t.is(memoryLimitValue(64 * MiB), "67108864");
  t.is(memoryLimitValue(512 * MiB), "536870912");
  t.is(memoryLimitValue(1), "1");
});

test("a CPU limit is a quota per 100 ms period: 0.5 cores is 50000 µs, 2 cores 200000", (t) => {
  t.is(cpuQuotaUs(0.5), 50_000);
  t.is(cpuQuotaUs(1), 100_000);
  t.is(cpuQuotaUs(2), 200_000);
  t.is(cpuQuotaUs(0.01), 1000);
  t.is(cpuMaxValue(0.5), "50000 100000");
  t.is(cpuMaxValue(1.5), "150000 100000");
  t.is(cpuMaxValue(undefined), "max 100000");
});

const refused = test.macro((t, run: () => unknown, pattern: RegExp) => {
  const error = t.throws(run);
  t.true(isLimitsError(error, "ERR_LIMITS_INVALID"), String(error));
  t.regex(error!.message, pattern);
});

test("memory 0 is refused", refused, () => memoryLimitValue(0), /memory limit 0 is not a whole number of bytes above 0/);
test("negative memory is refused", refused, () => memoryLimitValue(-1), /memory limit -1/);
test("fractional memory is refused", refused, () => memoryLimitValue(1.5), /memory limit 1.5/);
test("NaN memory is refused", refused, () => memoryLimitValue(Number.NaN), /memory limit NaN/);
test("cpu 0 is refused", refused, () => cpuQuotaUs(0), /cpu limit 0 is not a number of cores above 0/);
test("infinite cpu is refused", refused, () => cpuQuotaUs(Number.POSITIVE_INFINITY), /cpu limit Infinity/);
test("cpu below the kernel's smallest quota is refused", refused, () => cpuQuotaUs(0.001), /below the smallest the kernel enforces, 0.01 cores/);

test("sizes in messages are in binary units", (t) => {
  t.is(formatBytes(64 * MiB), "64 MiB");
  t.is(formatBytes(1536 * MiB), "1.5 GiB");
  t.is(formatBytes(512 * 1024), "512 KiB");
  t.is(formatBytes(100), "100 B");
});
