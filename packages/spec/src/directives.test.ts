import { readFileSync } from "node:fs";
import test from "ava";
import { ALLOWED_PROXY_DIRECTIVES, checkProxyDirective } from "./directives.js";

const NOT_ALLOWED = (name: string) => `${JSON.stringify(name)} is not an allowed directive (the list is in packages/spec/README.md)`;
const BAD_ARGUMENTS =
  "its arguments may hold letters, digits, $variables and -_.:/=,+*@%~!?^|()[]<>&, spaces only in double quotes; not ; { } # \\ ', newlines or a quote inside a word";

const refused = test.macro({
  exec(t, entry: unknown, why: string) {
    t.deepEqual(checkProxyDirective(entry), { ok: false, why });
  },
  title: (title = "") => `refuses ${title}`,
});

const accepted = test.macro({
  exec(t, entry: string, directive: string) {
    t.deepEqual(checkProxyDirective(entry), { ok: true, directive });
  },
  title: (title = "") => `accepts ${title}`,
});

// Directives that run code, read, write or serve files, or send requests elsewhere.
test("Lua in the workers", refused, `access_by_lua 'os.execute("id > /tmp/x")'`, NOT_ALLOWED("access_by_lua"));
test("a Lua block", refused, "content_by_lua_block", NOT_ALLOWED("content_by_lua_block"));
test("a Lua file", refused, "rewrite_by_lua_file /tmp/x.lua", NOT_ALLOWED("rewrite_by_lua_file"));
test("a Lua package path", refused, "lua_package_path /tmp/?.lua", NOT_ALLOWED("lua_package_path"));
test("loading a module", refused, "load_module /tmp/evil.so", NOT_ALLOWED("load_module"));
test("including a file", refused, "include /etc/shadow", NOT_ALLOWED("include"));
test("serving the filesystem", refused, "root /", NOT_ALLOWED("root"));
test("an alias", refused, "alias /etc/", NOT_ALLOWED("alias"));
test("proxying elsewhere", refused, "proxy_pass http://169.254.169.254", NOT_ALLOWED("proxy_pass"));
test("fastcgi", refused, "fastcgi_pass unix:/run/php.sock", NOT_ALLOWED("fastcgi_pass"));
test("an access log to any path", refused, "access_log /etc/cron.d/x", NOT_ALLOWED("access_log"));
test("an error log to any path", refused, "error_log /root/.ssh/authorized_keys", NOT_ALLOWED("error_log"));
test("perl", refused, "perl_set $x 'sub { `id` }'", NOT_ALLOWED("perl_set"));
test("njs", refused, "js_import /tmp/x.js", NOT_ALLOWED("js_import"));
test("a certificate path", refused, "ssl_certificate /etc/shadow", NOT_ALLOWED("ssl_certificate"));
test("auth_request", refused, "auth_request /x", NOT_ALLOWED("auth_request"));
test("mirror", refused, "mirror /copy", NOT_ALLOWED("mirror"));
test("set", refused, "set $x 1", NOT_ALLOWED("set"));
test("a capitalised name", refused, "Client_max_body_size 10m", NOT_ALLOWED("Client_max_body_size"));

// Allowed names whose arguments would end the directive and start another.
test("a semicolon inside", refused, "client_max_body_size 10m; include /etc/shadow", BAD_ARGUMENTS);
test("a second line", refused, "client_max_body_size 10m\ninclude /etc/shadow", BAD_ARGUMENTS);
test("a carriage return", refused, "client_max_body_size 10m\rinclude /etc/shadow", BAD_ARGUMENTS);
test("a block", refused, "add_header X y { }", BAD_ARGUMENTS);
test("a closing brace", refused, "add_header X y }", BAD_ARGUMENTS);
test("a comment that swallows the semicolon", refused, "add_header X y #", BAD_ARGUMENTS);
test("a backslash escape", refused, 'add_header X "a\\"; include /x; #"', BAD_ARGUMENTS);
test("single quotes", refused, "add_header X 'a b'", BAD_ARGUMENTS);
test("an unclosed quote", refused, 'add_header X "a b', BAD_ARGUMENTS);
test("a quote inside a word", refused, 'add_header X a"b', BAD_ARGUMENTS);
test("a quoted string glued to a word", refused, 'add_header X "a b"c', BAD_ARGUMENTS);
test("a ${var} with braces", refused, "add_header X ${host}", BAD_ARGUMENTS);
test("two semicolons", refused, "client_max_body_size 10m;;", BAD_ARGUMENTS);
test("nothing", refused, "  ", "empty");
test("a number", refused, 5, "not a string");

test("a size", accepted, "client_max_body_size 10m", "client_max_body_size 10m");
test("a trailing semicolon and extra blanks", accepted, "  proxy_read_timeout \t 30s; ", "proxy_read_timeout 30s");
test("a header with a variable", accepted, "proxy_set_header X-Request-Id $request_id", "proxy_set_header X-Request-Id $request_id");
test("an empty quoted value", accepted, 'proxy_set_header Accept-Encoding ""', 'proxy_set_header Accept-Encoding ""');
test("a quoted value with spaces", accepted, 'add_header Cache-Control "no-store, max-age=0" always', 'add_header Cache-Control "no-store, max-age=0" always');
test("mime types", accepted, "gzip_types text/css application/json", "gzip_types text/css application/json");
test("an address range", accepted, "allow 10.0.0.0/8", "allow 10.0.0.0/8");
test("a stream timeout", accepted, "proxy_timeout 10m", "proxy_timeout 10m");

test("the allowlist is sorted, and packages/spec/README.md lists exactly it", (t) => {
  t.deepEqual([...ALLOWED_PROXY_DIRECTIVES].sort(), ALLOWED_PROXY_DIRECTIVES);
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const start = readme.indexOf("## proxy.directives");
  const end = readme.indexOf("\n## ", start + 1);
  const listed = [...readme.slice(start, end === -1 ? undefined : end).matchAll(/^- `([a-z_]+)`/gm)].map((m) => m[1]);
  t.deepEqual(listed.sort(), ALLOWED_PROXY_DIRECTIVES);
});
