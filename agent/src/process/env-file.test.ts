import test from "ava";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isProcessError } from "./errors.js";
import { parseEnvFile, readEnvFile } from "./env-file.js";

function dir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), "cutover-envfile-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test("KEY=VALUE lines: comments, blanks, export and one pair of quotes; nothing else interpreted", (t) => {
  const text = "# geoip\n\nA=1\nexport B=two words\r\nC=\"quoted = kept\"\nD='x'\nE=\nF=$HOME ${PORT} \\n\nG=a=b\n";
  t.deepEqual(parseEnvFile(text, "/etc/geoip/env"), { A: "1", B: "two words", C: "quoted = kept", D: "x", E: "", F: "$HOME ${PORT} \\n", G: "a=b" });
});

test("a line that is not KEY=VALUE is refused by its number, never its text", (t) => {
  for (const [text, message] of [
    ["A=1\nhunter2\n", "run.env_file /etc/geoip/env line 2 is not KEY=VALUE"],
    ["=hunter2\n", "run.env_file /etc/geoip/env line 1 is not KEY=VALUE"],
    ["1X=hunter2\n", "run.env_file /etc/geoip/env line 1 names a variable that is not one: letters, digits and _, not starting with a digit"],
    ["my pass=hunter2\n", "run.env_file /etc/geoip/env line 1 names a variable that is not one: letters, digits and _, not starting with a digit"],
  ] as const) {
    const error = t.throws(() => parseEnvFile(text, "/etc/geoip/env"));
    t.true(isProcessError(error, "ERR_ENV_FILE"));
    t.is(error!.message, message);
    t.false(error!.message.includes("hunter2"));
  }
});

test("the agent reads a regular, not world-writable file by its absolute path (a symlink to one is followed)", async (t) => {
  const d = dir(t);
  const path = join(d, "env");
  writeFileSync(path, "GEOIP_DB=/var/lib/geoip.mmdb\n", { mode: 0o640 });
  t.deepEqual(await readEnvFile(path), { GEOIP_DB: "/var/lib/geoip.mmdb" });
  symlinkSync(path, join(d, "link"));
  t.deepEqual(await readEnvFile(join(d, "link")), { GEOIP_DB: "/var/lib/geoip.mmdb" });
});

test("a missing, relative, world-writable or non-regular env file is refused, saying what to do", async (t) => {
  const d = dir(t);
  const writable = join(d, "writable");
  writeFileSync(writable, "A=hunter2\n");
  chmodSync(writable, 0o666);
  mkdirSync(join(d, "adir"));
  const cases: [string, string][] = [
    [join(d, "missing"), `run.env_file ${join(d, "missing")} does not exist on this host: create it (KEY=VALUE lines, not world-writable) or take env_file out of the spec`],
    ["etc/geoip/env", "run.env_file etc/geoip/env is not an absolute path"],
    [writable, `run.env_file ${writable} is world-writable (mode 0666): anyone on the host could set the app's environment; chmod o-w it`],
    [join(d, "adir"), `run.env_file ${join(d, "adir")} is not a regular file`],
  ];
  for (const [path, message] of cases) {
    const error = await t.throwsAsync(readEnvFile(path));
    t.true(isProcessError(error, "ERR_ENV_FILE"), path);
    t.is(error!.message, message);
  }
});
