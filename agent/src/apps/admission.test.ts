// The host's own check of a Deploy, whatever the coordinator let through: a
// coordinator (or whoever holds its key) that skips the spec check still
// cannot make this host run root apps or Lua in nginx.
import test from "ava";
import type { cutover } from "@cutover/protocol";
import { isProcessError } from "../process/index.js";
import { admitDefinition as admitWire, type AdmissionPolicy } from "./admission.js";
import { appDefinitionOf } from "./definition.js";
import { DeployError } from "./errors.js";

/** As a Deploy carries it: checked at the command's edge, then admitted. */
const admitDefinition = (wire: cutover.v1.AppDefinition.$Properties, policy: AdmissionPolicy) => admitWire(appDefinitionOf(wire), policy);

const DEFINITION: cutover.v1.AppDefinition.$Properties = {
  name: "geoip",
  run: { command: ["node", "server.mjs"], user: "geoip" },
  bluePort: 7001,
  greenPort: 7002,
  proxy: { listenPort: 80, protocol: "http", directives: ["client_max_body_size 10m"] },
};
const GEOIP = { uid: 998, gid: 997, home: "/var/lib/geoip" };
const ROOT_HOST: AdmissionPolicy = { rootApps: "refuse", agentUid: 0, lookupUser: (name) => (name === "root" ? { uid: 0, gid: 0, home: "/root" } : GEOIP) };

const withDirectives = (directives: string[]) => ({ ...DEFINITION, proxy: { ...DEFINITION.proxy, directives } });

test("an unprivileged app with allowed directives is admitted", (t) => {
  t.notThrows(() => admitDefinition(DEFINITION, ROOT_HOST));
});

test("a directive that runs Lua in nginx's workers is refused by the host, sent past the coordinator (issue 11, finding 1)", (t) => {
  const error = t.throws(() => admitDefinition(withDirectives(["client_max_body_size 10m", `access_by_lua 'os.execute("id > /tmp/x")'`]), ROOT_HOST), { instanceOf: DeployError });
  t.is(error.code, "ERR_DIRECTIVE_REFUSED");
  t.is(
    error.message,
    `proxy.directives[1] "access_by_lua 'os.execute(\\"id > /tmp/x\\")'" is refused by this host: "access_by_lua" is not an allowed directive (the list is in packages/spec/README.md)`,
  );
});

test("an allowed directive that smuggles a second one after a semicolon is refused", (t) => {
  const error = t.throws(() => admitDefinition(withDirectives(["client_max_body_size 10m; load_module /tmp/x.so"]), ROOT_HOST), { instanceOf: DeployError });
  t.is(error.code, "ERR_DIRECTIVE_REFUSED");
});

test("no run.user on a root agent is refused, naming allow_root_apps", (t) => {
  const error = t.throws(() => admitDefinition({ ...DEFINITION, run: { ...DEFINITION.run, user: "" } }, ROOT_HOST));
  t.true(isProcessError(error, "ERR_ROOT_APP_REFUSED"));
  t.regex(error.message, /allow_root_apps: true in \/etc\/cutover\/agent\.yaml \(or the flag --allow-root-apps\)$/);
});

test("run.user root is refused; a host with allow_root_apps admits both", (t) => {
  const asRoot = { ...DEFINITION, run: { ...DEFINITION.run, user: "root" } };
  t.true(isProcessError(t.throws(() => admitDefinition(asRoot, ROOT_HOST)), "ERR_ROOT_APP_REFUSED"));
  t.notThrows(() => admitDefinition(asRoot, { ...ROOT_HOST, rootApps: "allow" }));
  t.notThrows(() => admitDefinition({ ...DEFINITION, run: { ...DEFINITION.run, user: "" } }, { ...ROOT_HOST, rootApps: "allow" }));
});
