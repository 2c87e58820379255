import test from "ava";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseSpec } from "@cutover/spec";
import { ApiError } from "../api/errors.js";
import { openDatabase } from "../store/database.js";
import { SecretStore } from "../store/secrets.js";
import { appDefinition } from "./plan.js";
import { secretValues, unsetSecretsRefusal } from "./secrets.js";

const SPEC = parseSpec(
  `app: geoip
run:
  command: [node, server.js]
  env: { DATABASE_URL: { secret: DATABASE_URL }, KEY: { secret: API_KEY }, NODE_ENV: production }
  env_file: /etc/geoip/env
ports: { blue: 7001, green: 7002 }
proxy: { listen: 80 }
health: { http: { path: /health } }
hosts: { role: geoip }
`,
  { file: "/srv/geoip.yml", exists: () => null },
);

function stores(t: { teardown(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), "cutover-rollout-secrets-"));
  const db = openDatabase(dir);
  t.teardown(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, secrets: new SecretStore(db, randomBytes(32)) };
}

test("the definition a Deploy carries holds the references, not the values; the values go beside it", (t) => {
  const { secrets } = stores(t);
  secrets.set("geoip", "DATABASE_URL", "postgres://x", "ops");
  secrets.set("geoip", "API_KEY", "k", "ops");
  secrets.set("geoip", "UNUSED", "u", "ops");
  t.like(appDefinition(SPEC).run, { env: { NODE_ENV: "production" }, secretEnv: { DATABASE_URL: "DATABASE_URL", KEY: "API_KEY" }, envFile: "/etc/geoip/env" });
  t.false(JSON.stringify(appDefinition(SPEC)).includes("postgres://x"));
  t.deepEqual(secretValues({ secrets }, SPEC), { API_KEY: "k", DATABASE_URL: "postgres://x" }, "only the referenced ones");
  t.is(unsetSecretsRefusal({ secrets }, SPEC), undefined);
});

test("a spec referencing secrets the app does not have is refused naming each, and what to do", (t) => {
  const { secrets } = stores(t);
  secrets.set("billing", "DATABASE_URL", "another app's", "ops");
  const refusal = unsetSecretsRefusal({ secrets }, SPEC);
  t.true(refusal instanceof ApiError);
  t.like(refusal, { status: 412, code: "ERR_SECRET_UNKNOWN" });
  t.is(refusal?.message, "run.env references the secrets DATABASE_URL, API_KEY, which geoip does not have; nothing was deployed (`cutover secret set geoip DATABASE_URL` sets it; `cutover secret list geoip` shows the names set)");
});

test("a stored secret that no longer opens refuses the deploy with ERR_SECRET_UNREADABLE", (t) => {
  const { db, secrets } = stores(t);
  secrets.set("geoip", "DATABASE_URL", "postgres://x", "ops");
  secrets.set("geoip", "API_KEY", "k", "ops");
  const withAnotherKey = new SecretStore(db, randomBytes(32));
  const error = t.throws(() => secretValues({ secrets: withAnotherKey }, SPEC), { instanceOf: ApiError });
  t.like(error, { status: 500, code: "ERR_SECRET_UNREADABLE" });
  t.regex(error!.message, /does not open with DATA_DIR\/secrets\.key.*; nothing was deployed$/);
});
