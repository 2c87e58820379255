import test from "ava";
import { dumpCommand, startCommand, testCommand, versionCommand } from "./commands.js";

test("nginx -t of a managed candidate config", (t) => {
  t.deepEqual(testCommand("/usr/sbin/nginx", "/s/nginx/nginx.test.conf", "/s/nginx/"), {
    file: "/usr/sbin/nginx",
    args: ["-p", "/s/nginx/", "-c", "/s/nginx/nginx.test.conf", "-t"],
  });
});

test("nginx -t of a system config has no prefix", (t) => {
  t.deepEqual(testCommand("/usr/sbin/nginx", "/etc/nginx/.cutover-test.conf"), {
    file: "/usr/sbin/nginx",
    args: ["-c", "/etc/nginx/.cutover-test.conf", "-t"],
  });
});

test("managed start: prefix, config, cwd in the prefix; daemonizing is left to nginx", (t) => {
  t.deepEqual(startCommand("/usr/sbin/nginx", "/s/nginx/", "/s/nginx/nginx.conf"), {
    file: "/usr/sbin/nginx",
    args: ["-p", "/s/nginx/", "-c", "/s/nginx/nginx.conf"],
    cwd: "/s/nginx/",
  });
});

test("version and dump", (t) => {
  t.deepEqual(versionCommand("nginx"), { file: "nginx", args: ["-V"] });
  t.deepEqual(dumpCommand("nginx", "/etc/nginx/nginx.conf"), { file: "nginx", args: ["-c", "/etc/nginx/nginx.conf", "-T"] });
});
