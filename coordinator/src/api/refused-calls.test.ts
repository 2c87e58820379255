import test from "ava";
import type { AuditEntry } from "../store/audit.js";
import { RefusedCalls, REFUSAL_WINDOW_MS, type RefusalLimits } from "./refused-calls.js";

function limiter(limits: Partial<RefusalLimits> = {}) {
  const rows: Omit<AuditEntry, "id" | "at">[] = [];
  let now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const refusals = new RefusedCalls({ record: (entry) => rows.push(entry) }, { limits, now: () => now });
  return { refusals, rows, advance: (ms: number) => (now += ms) };
}

test("per address: the first refusals are audited, the next only counted, past the rate answered 429", (t) => {
  const { refusals } = limiter({ auditedPerAddress: 3, answeredPerAddress: 5 });
  const verdicts = Array.from({ length: 7 }, () => refusals.refuse("192.0.2.1", 401));
  t.deepEqual(verdicts, ["audit", "audit", "audit", "count", "count", "throttle", "throttle"]);
  t.is(refusals.refuse("192.0.2.2", 401), "audit", "another address has its own budget");
  t.is(refusals.retryAfterSeconds("192.0.2.1"), 60);
});

test("the counted refusals become one summary row per address, written at flush", (t) => {
  const { refusals, rows } = limiter({ auditedPerAddress: 2, answeredPerAddress: 4 });
  for (let i = 0; i < 5; i++) refusals.refuse("192.0.2.1", 401);
  refusals.refuse("192.0.2.1", 403);
  t.is(rows.length, 0, "nothing written yet: audited rows are written by the audit trail itself");
  refusals.flush();
  t.deepEqual(rows, [
    {
      actor: "(refused callers)",
      action: "refused calls",
      target: "192.0.2.1",
      outcome: "aggregated",
      detail: "4 more refused calls from 192.0.2.1 in the minute from 12:00:00 UTC (401: 2, 429: 2), not audited one by one",
    },
  ]);
  refusals.flush();
  t.is(rows.length, 1, "a flush with nothing new writes nothing");
});

test("a new minute starts a new budget and summarizes the last one", (t) => {
  const { refusals, rows, advance } = limiter({ auditedPerAddress: 1 });
  refusals.refuse("192.0.2.1", 401);
  refusals.refuse("192.0.2.1", 401);
  advance(REFUSAL_WINDOW_MS);
  t.is(refusals.refuse("192.0.2.1", 401), "audit");
  t.is(rows.length, 1);
  t.regex(rows[0]!.detail, /^1 more refused calls from 192\.0\.2\.1 in the minute from 12:00:00 UTC \(401: 1\)/);
});

test("many addresses cannot get around it: audited rows are capped in all, and so are the addresses named", (t) => {
  const { refusals, rows } = limiter({ auditedPerAddress: 10, auditedInAll: 5, trackedAddresses: 50, summarizedAddresses: 2 });
  const verdicts = Array.from({ length: 100 }, (_, i) => refusals.refuse(`2001:db8::${i.toString(16)}`, 401));
  t.is(verdicts.filter((v) => v === "audit").length, 5);
  refusals.flush();
  t.is(rows.length, 3, "the two busiest by name, one row for the rest");
  t.is(rows[0]!.target, "(other addresses)", "the 50 addresses beyond the tracked 50 share one count");
  t.regex(rows[0]!.detail, /^50 more refused calls from \(other addresses\)/);
  t.regex(rows[2]!.detail, /^44 more refused calls from 44 other addresses/);
  t.is(rows.reduce((n, row) => n + Number(/^(\d+) more/.exec(row.detail)![1]), 0), 95, "every refusal not audited is counted");
});
