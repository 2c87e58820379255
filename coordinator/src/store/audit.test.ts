import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AUDIT_FIELD_LIMITS, AuditStore, TRUNCATED_MARK } from "./audit.js";
import { openDatabase } from "./database.js";

test("every audit field is capped, cut text ends with a marker, short text is kept as is", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "cutover-audit-"));
  const db = openDatabase(dir);
  t.teardown(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
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
