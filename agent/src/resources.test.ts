import test from "ava";
import { busyPercent, parseCpuTimes, parseMeminfo, ResourceSampler } from "./resources.js";

const STAT = "cpu  100 20 30 800 50 5 5 10 7 0\ncpu0 50 10 15 400 25 2 3 5 3 0\nintr 1 2 3\n";

test("the all-CPU line of /proc/stat: idle and iowait are not busy, guest is inside user", (t) => {
  t.deepEqual(parseCpuTimes(STAT), { busy: 170, total: 1020 });
  t.is(parseCpuTimes("intr 1 2\n"), null);
});

test("the load is the busy share of the ticks between two readings", (t) => {
  t.is(busyPercent({ busy: 100, total: 1000 }, { busy: 150, total: 1200 }), 25);
  t.is(busyPercent({ busy: 100, total: 1000 }, { busy: 100, total: 1000 }), 0, "no tick passed");
  t.is(busyPercent(null, { busy: 100, total: 1000 }), 0);
});

test("MemTotal and MemAvailable from /proc/meminfo, in bytes", (t) => {
  const meminfo = "MemTotal:       16384 kB\nMemFree:         1024 kB\nMemAvailable:    8192 kB\n";
  t.deepEqual(parseMeminfo(meminfo), { total: 16384 * 1024, available: 8192 * 1024 });
});

test("a sample of this host: a load between 0 and 100 %, memory and the disk asked for", async (t) => {
  const sample = await new ResourceSampler(["/"]).sample();
  const [load, total, available] = [Number(sample.cpuLoadPercent), Number(sample.memTotalBytes), Number(sample.memAvailableBytes)];
  t.true(load >= 0 && load <= 100);
  t.true(total > 0 && available > 0 && available <= total);
  t.is(sample.disks?.[0]?.path, "/");
  t.true(Number(sample.cpuCount) > 0);
});
