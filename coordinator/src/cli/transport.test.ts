import test from "ava";
import { EXIT, ExitError } from "./exit-error.js";
import { checkTransport } from "./transport.js";

const FINGERPRINT = `sha256:${"AB:".repeat(31)}AB`;

const allowed = test.macro((t, settings: { url: string; fingerprint?: string }, allowPlain: boolean) => {
  t.notThrows(() => checkTransport(settings, allowPlain));
});
const refused = test.macro((t, settings: { url: string; fingerprint?: string }, allowPlain: boolean, message: RegExp) => {
  const error = t.throws(() => checkTransport(settings, allowPlain), { instanceOf: ExitError, message });
  t.is(error?.exitCode, EXIT.usage);
});

test("https with a pin", allowed, { url: "https://coordinator.example:7400", fingerprint: FINGERPRINT }, false);
test("plain http on loopback", allowed, { url: "http://127.0.0.1:7400" }, false);
test("plain http on [::1]", allowed, { url: "http://[::1]:7400" }, false);
test("plain http off loopback when allowed", allowed, { url: "http://10.0.0.5:7400" }, true);
test("plain http off loopback", refused, { url: "http://10.0.0.5:7400" }, false, /refusing to send the API token over plain http to 10\.0\.0\.5: .*--allow-plain \(or set CUTOVER_ALLOW_PLAIN=1\)/);
test("a host that only starts like loopback", refused, { url: "http://127.0.0.1.attacker.example:7400" }, false, /plain http to 127\.0\.0\.1\.attacker\.example/);
test("a fingerprint with plain http", refused, { url: "http://127.0.0.1:7400", fingerprint: FINGERPRINT }, true, /a fingerprint pins the coordinator's TLS certificate, but http:\/\/127\.0\.0\.1:7400 is plain http and has none to check/);
test("not a URL", refused, { url: "coordinator:7400x" }, false, /must start with https:\/\/ or http:\/\//);
test("garbage", refused, { url: "::" }, false, /is not a URL/);
