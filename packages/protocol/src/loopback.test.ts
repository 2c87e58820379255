import test from "ava";
import { isLoopbackHost } from "./index.js";

const loopback = test.macro((t, host: string, expected: boolean) => {
  t.is(isLoopbackHost(host), expected);
});

for (const host of ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.255.255.254", "127.0.0.11", "::1", "[::1]", "0:0:0:0:0:0:0:1", "0000::0001", "::ffff:127.0.0.1", "[::ffff:7f00:1]"]) {
  test(`${host} is loopback`, loopback, host, true);
}

// The prefix regex this replaces let the first three through.
for (const host of [
  "127.0.0.1.attacker.example",
  "127.attacker.example",
  "127.0.0.1.nip.io",
  "localhost.attacker.example",
  "attacker-localhost",
  "128.0.0.1",
  "10.0.0.5",
  "0.0.0.0",
  "127.0.0.256",
  "127.0.0",
  "::",
  "::2",
  "1::1",
  "::ffff:10.0.0.1",
  "::1:1",
  "1:2:3:4:5:6:7:8:9",
  "::1::",
  "0.0.0.0.127.0.0.1",
  "",
]) {
  test(`${JSON.stringify(host)} is not loopback`, loopback, host, false);
}
