import test from "ava";
import { isProcessError } from "../process/index.js";
import { SecretVault } from "./secret-vault.js";

test("the vault gives each variable its secret's value, per app, the latest value a command brought", (t) => {
  const vault = new SecretVault();
  vault.put("geoip", { DATABASE_URL: "v1", API_KEY: "k" });
  vault.put("geoip", { DATABASE_URL: "v2" });
  vault.put("geoip", {});
  vault.put("geoip", null);
  vault.put("billing", { DATABASE_URL: "other" });
  t.deepEqual(vault.environment("geoip", { DATABASE_URL: "DATABASE_URL", GEOIP_KEY: "API_KEY" }), { DATABASE_URL: "v2", GEOIP_KEY: "k" });
  t.deepEqual(vault.environment("billing", { DB: "DATABASE_URL" }), { DB: "other" });
  t.deepEqual(vault.environment("geoip", {}), {});
});

test("a secret the agent does not hold (a restarted agent holds none) is refused naming it and what brings it back", (t) => {
  const vault = new SecretVault();
  vault.put("geoip", { API_KEY: "hunter2" });
  const error = t.throws(() => vault.environment("geoip", { DATABASE_URL: "DATABASE_URL", KEY: "API_KEY", DB2: "DATABASE_URL" }));
  t.true(isProcessError(error, "ERR_SECRET_UNAVAILABLE"));
  t.is(
    error!.message,
    "geoip needs the secret DATABASE_URL, which this agent does not hold: secrets are kept in memory only, never on disk, so an agent that restarted has none until the next command brings them; `cutover deploy` (or `cutover rollback`) geoip sends them again",
  );
  t.false(error!.message.includes("hunter2"));
});
