import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { ConfigError, resolveAgentConfig } from "./config.js";

function configFile(t: ExecutionContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-agent-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "agent.yaml"), `coordinator: "http://127.0.0.1:7400"\nname: web-1\n${text}`);
  return join(dir, "agent.yaml");
}

test("root apps are refused unless the host opts in", (t) => {
  t.is(resolveAgentConfig({ config: configFile(t, "") }).rootApps, "refuse");
  t.is(resolveAgentConfig({ config: configFile(t, "allow_root_apps: false\n") }).rootApps, "refuse");
  t.is(resolveAgentConfig({ config: configFile(t, "allow_root_apps: true\n") }).rootApps, "allow");
  t.is(resolveAgentConfig({ config: configFile(t, ""), allowRootApps: true }).rootApps, "allow", "--allow-root-apps");
});

test("allow_root_apps must be a YAML boolean, not a word that looks like one", (t) => {
  const path = configFile(t, 'allow_root_apps: "yes"\n');
  const error = t.throws(() => resolveAgentConfig({ config: path }), { instanceOf: ConfigError });
  t.is(error.message, `${path}: allow_root_apps must be true or false, got "yes"`);
});
