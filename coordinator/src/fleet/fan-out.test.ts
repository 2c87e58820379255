import test from "ava";
import { inSlices } from "./fan-out.js";

test("a fan-out sends a slice per event-loop turn, so work queued meanwhile runs between slices, and resolves in order", async (t) => {
  const seen: string[] = [];
  // Queued while the first slice goes out, as an answer read from a socket would be.
  const results = await inSlices([1, 2, 3, 4, 5], async (n) => {
    seen.push(`send ${n}`);
    if (n === 1 || n === 3) setImmediate(() => seen.push(`work queued during send ${n}`));
    return n * 10;
  }, 2);
  t.deepEqual(results, [10, 20, 30, 40, 50]);
  t.deepEqual(seen, ["send 1", "send 2", "work queued during send 1", "send 3", "send 4", "work queued during send 3", "send 5"]);
});
