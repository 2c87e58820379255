import test from "ava";
import { ExitError } from "../exit-error.js";
import { renderSecrets, secretValueOf } from "./secret.js";

test("a secret's value is what was given, less one trailing newline", (t) => {
  t.is(secretValueOf(Buffer.from("s3cr3t\n"), "stdin"), "s3cr3t");
  t.is(secretValueOf(Buffer.from("s3cr3t\r\n"), "stdin"), "s3cr3t");
  t.is(secretValueOf(Buffer.from("a b\n\n"), "stdin"), "a b\n", "only one newline is dropped");
  t.is(secretValueOf(Buffer.from("  ü=x  "), "stdin"), "  ü=x  ");
});

test("an empty, NUL-holding or non-UTF-8 value is refused as bad input, without repeating it", (t) => {
  for (const [raw, message] of [
    [Buffer.from("\n"), "the value from stdin is empty; nothing was set (`cutover secret rm` removes a secret)"],
    [Buffer.from(""), "the value from stdin is empty; nothing was set (`cutover secret rm` removes a secret)"],
    [Buffer.from("ab\0cd"), "the value from stdin holds a NUL byte, which no environment variable can carry; nothing was set"],
    [Buffer.from([0x61, 0xff, 0x62]), "the value from stdin is not UTF-8 text; nothing was set (environment values are text: base64-encode binary data)"],
  ] as const) {
    const error = t.throws(() => secretValueOf(raw, "stdin"), { instanceOf: ExitError });
    t.is(error?.message, message);
    t.is(error?.exitCode, 64);
  }
});

test("secret list shows names, when and by whom; never a value", (t) => {
  t.is(renderSecrets("geoip", []), "geoip has no secrets (`cutover secret set geoip NAME` sets one)");
  const table = renderSecrets("geoip", [{ app: "geoip", name: "DATABASE_URL", setAt: "2026-12-02T14:00:00.000Z", setBy: "ops" }]);
  t.regex(table, /^NAME\s+SET AT\s+SET BY\nDATABASE_URL\s+2026-12-02T14:00:00\.000Z\s+ops$/);
});
