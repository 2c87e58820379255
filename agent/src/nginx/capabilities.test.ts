import test from "ava";
import { findModules, loadedModules, managedCapabilities, moduleDirs, parseBuild, systemCapabilities } from "./capabilities.js";

const debianV = `nginx version: nginx/1.22.1
built with OpenSSL 3.0.11 19 Sep 2023
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --pid-path=/run/nginx.pid --modules-path=/usr/lib/nginx/modules --with-http_ssl_module --with-stream=dynamic --with-stream_ssl_module`;

const openrestyV = `nginx version: openresty/1.25.3.1
configure arguments: --prefix=/usr/local/openresty/nginx --add-module=../ngx_lua-0.10.26 --with-stream --with-stream_ssl_module`;

test("parseBuild reads Debian's -V: dynamic stream, paths", (t) => {
  t.deepEqual(parseBuild(debianV), {
    version: "1.22.1",
    staticStream: false,
    staticLua: false,
    modulesPath: "/usr/lib/nginx/modules",
    pidPath: "/run/nginx.pid",
    confPath: "/etc/nginx/nginx.conf",
  });
});

test("parseBuild sees OpenResty's built-in Lua and stream", (t) => {
  t.like(parseBuild(openrestyV), { version: "1.25.3.1", staticStream: true, staticLua: true });
});

test("managed mode loads ndk before lua, and stream, when the files exist", (t) => {
  const build = parseBuild(debianV);
  const files = new Set(["/usr/share/nginx/modules/ndk_http_module.so", "/usr/share/nginx/modules/ngx_http_lua_module.so", "/usr/share/nginx/modules/ngx_stream_module.so"]);
  const found = findModules(moduleDirs(build), (path) => files.has(path));
  t.deepEqual(managedCapabilities(build, found), {
    capabilities: { lua: true, stream: true },
    load: [...files],
  });
});

test("managed mode with lua: false leaves the Lua module out (a reload-mode agent), stream still loads", (t) => {
  const found = { ndk: "/m/ndk_http_module.so", lua: "/m/ngx_http_lua_module.so", stream: "/m/ngx_stream_module.so" };
  t.deepEqual(managedCapabilities(parseBuild(""), found, { lua: false }), { capabilities: { lua: false, stream: true }, load: ["/m/ngx_stream_module.so"] });
});

test("managed mode without module files: nothing to load, no live mode", (t) => {
  t.deepEqual(managedCapabilities(parseBuild(debianV), {}), { capabilities: { lua: false, stream: false }, load: [] });
});

test("built-in modules are not loaded again", (t) => {
  t.deepEqual(managedCapabilities(parseBuild(openrestyV), {}), { capabilities: { lua: true, stream: true }, load: [] });
});

test("system mode counts only modules the host config loads", (t) => {
  const dump = "# configuration file /etc/nginx/modules-enabled/50-mod-http-lua.conf:\nload_module modules/ngx_http_lua_module.so;\n";
  t.deepEqual([...loadedModules(dump)], ["ngx_http_lua_module.so"]);
  t.deepEqual(systemCapabilities(parseBuild(debianV), dump), { lua: true, stream: false });
  t.deepEqual(systemCapabilities(parseBuild(debianV), "#load_module modules/ngx_http_lua_module.so;"), { lua: false, stream: false });
});
