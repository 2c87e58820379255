import test from "ava";
import { busyPercent, cpuTimes, ResourceSampler } from "./resources.js";

const core = (user: number, nice: number, sys: number, idle: number, irq: number) => ({ times: { user, nice, sys, idle, irq } });

test("CPU times of all cores: idle is not busy", (t) => {
  t.deepEqual(cpuTimes([core(100, 20, 30, 800, 5), core(50, 0, 10, 400, 0)]), { busy: 215, total: 1415 });
});

test("the load is the busy share of the time between two readings", (t) => {
  t.is(busyPercent({ busy: 100, total: 1000 }, { busy: 150, total: 1200 }), 25);
  t.is(busyPercent({ busy: 100, total: 1000 }, { busy: 100, total: 1000 }), 0, "no time passed");
});

test("a sample of this host: a load between 0 and 100 %, memory and the disk asked for", async (t) => {
  const sample = await new ResourceSampler(["/"]).sample();
  const [load, total, available] = [Number(sample.cpuLoadPercent), Number(sample.memTotalBytes), Number(sample.memAvailableBytes)];
  t.true(load >= 0 && load <= 100);
  t.true(total > 0 && available > 0 && available <= total);
  t.is(sample.disks?.[0]?.path, "/");
  t.true(Number(sample.cpuCount) > 0);
});
