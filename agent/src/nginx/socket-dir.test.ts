import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { NginxError } from "./errors.js";
import { ensureSocketDir } from "./socket-dir.js";

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-socket-dir-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const AGENT_UID = process.geteuid!();

test("a missing dir is made, the agent's own with mode 0700 (as after a reboot without tmpfiles.d)", (t) => {
  const dir = join(scratch(t), "run", "cutover");
  ensureSocketDir(dir);
  const stat = lstatSync(dir);
  t.true(stat.isDirectory());
  t.is(stat.uid, AGENT_UID);
  t.is(stat.mode & 0o7777, 0o700);
});

test("an existing dir of the agent's with no group/other write passes (0710 for nginx's workers, 0755)", (t) => {
  for (const mode of [0o700, 0o710, 0o755]) {
    const dir = join(scratch(t), "cutover");
    mkdirSync(dir);
    chmodSync(dir, mode);
    t.notThrows(() => ensureSocketDir(dir), mode.toString(8));
  }
});

const refused = test.macro({
  exec(t, prepare: (base: string) => { dir: string; uid?: number }, why: string) {
    const { dir, uid } = prepare(scratch(t));
    const error = t.throws(() => ensureSocketDir(dir, uid ?? AGENT_UID), { instanceOf: NginxError });
    t.is(error.code, "ERR_NGINX_SOCKET_DIR_UNSAFE");
    t.is(error.message, `the control socket's directory ${dir} is not safe: ${why.replaceAll("DIR", dir)}. The agent does not start until it is`);
  },
  title: (title = "") => `refuses a socket dir that ${title}`,
});

test("is world-writable", refused, (base) => {
  const dir = join(base, "cutover");
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  return { dir };
}, "its mode is 0777, writable by group or others; chmod go-w DIR");

test("is group-writable", refused, (base) => {
  const dir = join(base, "cutover");
  mkdirSync(dir);
  chmodSync(dir, 0o770);
  return { dir };
}, "its mode is 0770, writable by group or others; chmod go-w DIR");

test("is a symlink to a directory someone else controls", refused, (base) => {
  mkdirSync(join(base, "elsewhere"));
  const dir = join(base, "cutover");
  symlinkSync(join(base, "elsewhere"), dir);
  return { dir };
}, "it is a symlink; make it a directory of its own");

test("is a dangling symlink", refused, (base) => {
  const dir = join(base, "cutover");
  symlinkSync(join(base, "nowhere"), dir);
  return { dir };
}, "it is a symlink; make it a directory of its own");

test("is a file", refused, (base) => {
  const dir = join(base, "cutover");
  writeFileSync(dir, "");
  return { dir };
}, "it is not a directory");

test("belongs to another user", refused, (base) => {
  const dir = join(base, "cutover");
  mkdirSync(dir, { mode: 0o700 });
  if (AGENT_UID === 0) chownSync(dir, 65534, 65534);
  return { dir, uid: AGENT_UID === 0 ? 0 : AGENT_UID + 1 };
}, `it is owned by uid ${AGENT_UID === 0 ? 65534 : AGENT_UID}, not the agent's uid ${AGENT_UID === 0 ? 0 : AGENT_UID + 1}; chown ${AGENT_UID === 0 ? 0 : AGENT_UID + 1} DIR`);
