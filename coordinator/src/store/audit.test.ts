import { AUDIT_FIELD_LIMITS, AuditStore, TRUNCATED_MARK } from "./audit.js";
import { bothEngines, openTestStore } from "./engines.testing.js";

bothEngines("every audit field is capped, cut text ends with a marker, short text is kept as is", (t, engine) => {
  const { db } = openTestStore(t, engine);
  const audit = new AuditStore(db);
  const huge = "x".repeat(1024 * 1024);
  audit.record({ actor: huge, action: huge, target: huge, outcome: huge, detail: huge });
  audit.record({ actor: "admin", action: "POST /v1/tokens/api", target: "api token ci", outcome: "201", detail: "role=deploy" });
  const [short, long] = audit.list();
  t.like(short, { actor: "admin", action: "POST /v1/tokens/api", target: "api token ci", outcome: "201", detail: "role=deploy" });
  for (const [field, limit] of Object.entries(AUDIT_FIELD_LIMITS)) {
    const value = long![field as keyof typeof AUDIT_FIELD_LIMITS];
    t.is(value.length, limit, field);
    t.true(value.endsWith(TRUNCATED_MARK), field);
  }
});

bothEngines("a fan-out's entries recorded in one turn are all kept, in the order they were recorded", (t, engine) => {
  const { db } = openTestStore(t, engine);
  const audit = new AuditStore(db);
  // More than one statement's worth: the write spans several, in one transaction.
  for (let i = 0; i < 450; i++) audit.record({ actor: "coordinator", action: "command ping", target: `web-${i}`, outcome: "OK", detail: "" });
  const entries = audit.list({ limit: 1000 });
  t.is(entries.length, 450);
  t.deepEqual(entries.map((e) => e.target), Array.from({ length: 450 }, (_, i) => `web-${449 - i}`));
});
