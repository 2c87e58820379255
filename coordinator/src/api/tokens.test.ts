import test from "ava";
import { ApiError } from "./errors.js";
import { parseLabelList, parseLifetime } from "./tokens.js";
import { isHostAddress } from "../fleet/host-address.js";

const DAY = 24 * 60 * 60 * 1000;

test("lifetimes are whole days or durations", (t) => {
  t.is(parseLifetime("30d"), 30 * DAY);
  t.is(parseLifetime("365d"), 365 * DAY);
  t.is(parseLifetime("12h"), DAY / 2);
  t.is(parseLifetime("1h30m"), 90 * 60 * 1000);
  for (const bad of ["", "30", "1w", "-1d", "1.5d", "d"]) t.throws(() => parseLifetime(bad), { instanceOf: RangeError }, bad);
});

test("bound labels are k=v pairs, each checked against the label rule", (t) => {
  t.deepEqual(parseLabelList("role=geoip, zone=a"), { role: "geoip", zone: "a" });
  t.deepEqual(parseLabelList(""), {});
  for (const [bad, message] of [
    ["role", /label "role" must be key=value/],
    ["=x", /label "=x" must be key=value/],
    ["Role=x", /label Role=x is invalid: key: a-z/],
    ["role=a b", /label role=a b is invalid/],
  ] as const) {
    const error = t.throws(() => parseLabelList(bad), { instanceOf: ApiError, message });
    t.is(error?.status, 400);
  }
});

test("a bound address is an IP literal or a host name", (t) => {
  for (const good of ["10.0.0.5", "::1", "2001:db8::5", "web-1", "web-1.example.com"]) t.true(isHostAddress(good), good);
  for (const bad of ["", "10.0.0.5:80", "http://x", "a b", "-web", "web_1", "x".repeat(64), "[::1]", "10.0.0.5\n"]) t.false(isHostAddress(bad), JSON.stringify(bad));
});
