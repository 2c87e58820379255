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

/** A config file with only the given text (no coordinator line of its own). */
function bareConfigFile(t: ExecutionContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-agent-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "agent.yaml"), `name: web-1\n${text}`);
  return join(dir, "agent.yaml");
}

const THREE = ["ws://127.0.0.2:7400/v1/agent", "ws://127.0.0.3:7400/v1/agent", "ws://127.0.0.4:7400/v1/agent"];

test("one coordinator is a list of one, pointed at the agent endpoint", (t) => {
  t.deepEqual(resolveAgentConfig({ config: configFile(t, "") }).coordinatorUrls, ["ws://127.0.0.1:7400/v1/agent"]);
});

test("--coordinator takes every coordinator comma-separated, in order, each pointed at the agent endpoint", (t) => {
  const config = resolveAgentConfig({ config: bareConfigFile(t, ""), coordinator: "http://127.0.0.2:7400, ws://127.0.0.3:7400/v1/agent,http://127.0.0.4:7400," });
  t.deepEqual(config.coordinatorUrls, THREE);
});

test("coordinator: in the config file is a YAML list or a comma string", (t) => {
  const list = bareConfigFile(t, "coordinator:\n  - http://127.0.0.2:7400\n  - http://127.0.0.3:7400\n  - http://127.0.0.4:7400\n");
  t.deepEqual(resolveAgentConfig({ config: list }).coordinatorUrls, THREE);
  const comma = bareConfigFile(t, 'coordinator: "http://127.0.0.2:7400,http://127.0.0.3:7400,http://127.0.0.4:7400"\n');
  t.deepEqual(resolveAgentConfig({ config: comma }).coordinatorUrls, THREE);
  t.deepEqual(resolveAgentConfig({ config: list, coordinator: "http://127.0.0.9:7400" }).coordinatorUrls, ["ws://127.0.0.9:7400/v1/agent"], "the flag wins over the file");
});

test("the same coordinator twice is dialled once", (t) => {
  t.deepEqual(resolveAgentConfig({ config: bareConfigFile(t, ""), coordinator: "http://127.0.0.2:7400,ws://127.0.0.2:7400/v1/agent" }).coordinatorUrls, [THREE[0]]);
});

const badCoordinators = test.macro((t, settings: { file?: string; coordinator?: string; coordinatorFingerprint?: string; allowPlain?: boolean }, message: string | RegExp) => {
  const config = bareConfigFile(t, settings.file ?? "");
  const error = t.throws(() => resolveAgentConfig({ config, coordinator: settings.coordinator, coordinatorFingerprint: settings.coordinatorFingerprint, allowPlain: settings.allowPlain }), { instanceOf: ConfigError });
  t.is(error.code, "ERR_AGENT_CONFIG");
  if (typeof message === "string") t.is(error.message, message.replace("PATH", config));
  else t.regex(error.message, message);
});

test("no coordinator at all", badCoordinators, {}, "no coordinator: pass --coordinator URL (or URL1,URL2,... for several) or set `coordinator:` in the config file");
test("only commas", badCoordinators, { coordinator: " , ," }, "no coordinator: pass --coordinator URL (or URL1,URL2,... for several) or set `coordinator:` in the config file");
test("an empty YAML list", badCoordinators, { file: "coordinator: []\n" }, "no coordinator: pass --coordinator URL (or URL1,URL2,... for several) or set `coordinator:` in the config file");
test("a YAML list holding a number", badCoordinators, { file: "coordinator:\n  - http://127.0.0.2:7400\n  - 7400\n" }, 'PATH: coordinator must be a URL, URLs separated by commas, or a list of URLs, got ["http://127.0.0.2:7400",7400]');
test("a YAML map", badCoordinators, { file: "coordinator:\n  url: http://127.0.0.2:7400\n" }, 'PATH: coordinator must be a URL, URLs separated by commas, or a list of URLs, got {"url":"http://127.0.0.2:7400"}');
test("the second of two is not a URL", badCoordinators, { coordinator: "http://127.0.0.2:7400,coordinator-b" }, 'coordinator "coordinator-b" is not a URL (e.g. wss://coordinator.example:7400)');
test("the second of two has another scheme", badCoordinators, { coordinator: "http://127.0.0.2:7400,ftp://127.0.0.3" }, 'coordinator URL must start with ws://, wss://, http:// or https://, got "ftp://127.0.0.3"');
test("plain ws:// to the second, off loopback", badCoordinators, { coordinator: "https://a.example:7400,http://b.example:7400" }, "refusing plain ws:// to b.example: use https:// (wss) with --coordinator-fingerprint, or --allow-plain on a trusted network");
test("--coordinator-fingerprint with a plain second coordinator", badCoordinators, { coordinator: "https://a.example:7400,http://127.0.0.3:7400", coordinatorFingerprint: `sha256:${"AB:".repeat(31)}AB` }, /--coordinator-fingerprint pins a TLS certificate, but http:\/\/127\.0\.0\.3:7400 is plain/);

test("--allow-plain lets every coordinator off loopback be plain", (t) => {
  const config = resolveAgentConfig({ config: bareConfigFile(t, ""), coordinator: "http://a.example:7400,http://b.example:7400", allowPlain: true });
  t.deepEqual(config.coordinatorUrls, ["ws://a.example:7400/v1/agent", "ws://b.example:7400/v1/agent"]);
  t.deepEqual(config.coordinatorRules, { allowPlain: true, fingerprintFlag: false });
});
