import test from "ava";
import { managedPaths, renderManagedMain, replaceIncludeGlob } from "./main-conf.js";

const paths = managedPaths("/var/lib/cutover");

test("managed paths all live under <stateDir>/nginx/", (t) => {
  t.is(paths.prefix, "/var/lib/cutover/nginx/");
  for (const path of Object.values(paths)) t.true(path.startsWith("/var/lib/cutover/nginx"), path);
  t.is(paths.controlSocket, "/var/lib/cutover/nginx/control.sock");
});

test("managed main: modules, prefix-local pid/log/temp paths, sites and streams included", (t) => {
  const text = renderManagedMain({ paths, modules: ["/m/ndk.so", "/m/lua.so", "/m/stream.so"], lua: true, stream: true, user: { name: "www-data", group: "www-data" } });
  const lines = text.split("\n").map((line) => line.trim());
  t.deepEqual(
    lines.filter((line) => line.startsWith("load_module")),
    ["load_module /m/ndk.so;", "load_module /m/lua.so;", "load_module /m/stream.so;"],
  );
  for (const line of [
    "user www-data www-data;",
    "worker_processes 1;",
    "pid /var/lib/cutover/nginx/nginx.pid;",
    "error_log /var/lib/cutover/nginx/error.log notice;",
    "client_body_temp_path /var/lib/cutover/nginx/tmp/client_body;",
    "proxy_temp_path /var/lib/cutover/nginx/tmp/proxy;",
    "lua_shared_dict cutover_live 1m;",
    "listen unix:/var/lib/cutover/nginx/control.sock;",
    "include /var/lib/cutover/nginx/sites/*.conf;",
    "include /var/lib/cutover/nginx/streams/*.conf;",
  ]) {
    t.true(lines.includes(line), line);
  }
  t.regex(text, /^stream \{\n {4}include \/var\/lib\/cutover\/nginx\/streams\/\*\.conf;\n\}$/m);
  t.false(/\/(?:var\/log|run|etc)\//.test(text), "no global path");
});

test("managed main without Lua or stream: no dict, no control server, no stream block, no user line", (t) => {
  const text = renderManagedMain({ paths, modules: [], lua: false, stream: false, workerProcesses: "auto" });
  t.false(text.includes("lua_shared_dict"));
  t.false(text.includes("control.sock"));
  t.false(text.includes("stream {"));
  t.false(text.includes("load_module"));
  t.false(/^user /m.test(text));
  t.regex(text, /^worker_processes auto;$/m);
});

test("test config lists explicit files instead of the globs", (t) => {
  const text = renderManagedMain({
    paths,
    modules: [],
    lua: false,
    stream: true,
    includes: { http: ["/a/x.conf", "/a/y.conf.candidate"], stream: [] },
  });
  t.regex(text, /^ {4}include \/a\/x\.conf;\n {4}include \/a\/y\.conf\.candidate;\n\}$/m);
  t.false(text.includes("*.conf"));
  t.regex(text, /^stream \{\n\}$/m, "an empty stream block is still valid");
});

const debianMain = `user www-data;
pid /run/nginx.pid;
http {
\tinclude /etc/nginx/mime.types;
\tinclude /etc/nginx/conf.d/*.conf;
\tinclude /etc/nginx/sites-enabled/*;
}
`;

test("system test config replaces the conf.d include on its own line, keeping line numbers", (t) => {
  const text = replaceIncludeGlob(debianMain, ["/etc/nginx/conf.d/*.conf", "conf.d/*.conf"], ["/etc/nginx/conf.d/a.conf", "/etc/nginx/conf.d/cutover-x.conf.candidate"]);
  t.is(
    text,
    debianMain.replace(
      "\tinclude /etc/nginx/conf.d/*.conf;",
      "\tinclude /etc/nginx/conf.d/a.conf; include /etc/nginx/conf.d/cutover-x.conf.candidate;",
    ),
  );
  t.is(text!.split("\n").length, debianMain.split("\n").length);
});

test("system test config: relative spelling matches, a missing include is reported as null", (t) => {
  t.is(replaceIncludeGlob("http {\n  include conf.d/*.conf;\n}\n", ["/etc/nginx/conf.d/*.conf", "conf.d/*.conf"], []), "http {\n  \n}\n");
  t.is(replaceIncludeGlob("http {\n}\n", ["/etc/nginx/conf.d/*.conf"], []), null);
  t.is(replaceIncludeGlob("#include /etc/nginx/conf.d/*.conf;\n", ["/etc/nginx/conf.d/*.conf"], []), null, "a commented include does not count");
});
