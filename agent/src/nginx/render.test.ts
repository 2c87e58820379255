import test from "ava";
import { TEST_PROBE_TOKEN } from "./test-probe-token.js";
import { NginxError } from "./errors.js";
import { renderSite } from "./render.js";
import { parseSiteHeader, type SiteConfig } from "./site.js";

const geoip: SiteConfig = {
  app: "geoip",
  protocol: "http",
  listenAddress: "127.0.0.11",
  listenPort: 80,
  upstreamAddress: "127.0.0.11",
  livePort: 7001,
  switchMode: "reload",
};

test("reload-mode http site, exactly", (t) => {
  t.is(
    renderSite(geoip, TEST_PROBE_TOKEN),
    `# Written by cutover-agent; edits are overwritten on the next switch.
# cutover-site app=geoip protocol=http mode=reload live-port=7001
# cutover-listen site=app:geoip listen=127.0.0.11:80 names=* tls=0 http2=0 default=0
map $http_x_cutover_probe $cutover_upstream_67656f6970 {
    default "";
    "0123456789abcdef0123456789abcdef" $upstream_addr;
}

upstream cutover_geoip {
    server 127.0.0.11:7001 max_fails=0;
    keepalive 32;
}

server {
    listen 127.0.0.11:80;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Cutover-Probe "";
    add_header X-Cutover-Upstream $cutover_upstream_67656f6970 always;

    location / {
        proxy_pass http://cutover_geoip;
    }
}
`,
  );
});

test("live-mode http site reads the port from the dict, falls back to the rendered one, keeps keepalive after the balancer", (t) => {
  const text = renderSite({ ...geoip, switchMode: "live", livePort: 7002 }, TEST_PROBE_TOKEN);
  const lines = text.split("\n").map((line) => line.trim());
  t.true(lines.includes('local port = ngx.is_subrequest and tonumber(ngx.var.cutover_probe_port) or ngx.shared.cutover_live:get("geoip") or 7002'));
  t.true(lines.includes('local ok, err = require("ngx.balancer").set_current_peer("127.0.0.11", port)'));
  t.true(lines.includes("server 127.0.0.11:7002 max_fails=0;"), "a server line is still required and is the fallback");
  const balancer = lines.indexOf("balancer_by_lua_block {");
  const keepalive = lines.indexOf("keepalive 32;");
  t.true(balancer > 0 && keepalive > balancer, "keepalive must follow balancer_by_lua to wrap its peer");
  t.true(lines.includes("add_header X-Cutover-Upstream $cutover_upstream_67656f6970 always;"), "named for the agent's probes only");
  t.true(lines.includes('proxy_set_header X-Cutover-Probe "";'), "the probe token never reaches the app");
  t.true(lines.includes('proxy_set_header Connection "";'));
});

test("live and reload renders differ only by the balancer and the header mode", (t) => {
  const reload = renderSite(geoip, TEST_PROBE_TOKEN).split("\n");
  const live = renderSite({ ...geoip, switchMode: "live" }, TEST_PROBE_TOKEN).split("\n");
  t.deepEqual(
    reload.filter((line) => !live.includes(line)),
    ["# cutover-site app=geoip protocol=http mode=reload live-port=7001"],
  );
});

test("tcp site renders a stream server, exactly", (t) => {
  t.is(
    renderSite({ ...geoip, protocol: "tcp", listenPort: 5432, extraDirectives: ["proxy_timeout 10m"] }, TEST_PROBE_TOKEN),
    `# Written by cutover-agent; edits are overwritten on the next switch.
# cutover-site app=geoip protocol=tcp mode=reload live-port=7001
upstream cutover_geoip {
    server 127.0.0.11:7001 max_fails=0;
}

server {
    listen 127.0.0.11:5432;
    proxy_pass cutover_geoip;

    proxy_timeout 10m;
}
`,
  );
});

test("tcp in live mode is refused: the Lua balancer is http-only", (t) => {
  const error = t.throws(() => renderSite({ ...geoip, protocol: "tcp", switchMode: "live" }, TEST_PROBE_TOKEN), { instanceOf: NginxError });
  t.is(error.code, "ERR_NGINX_LIVE_UNSUPPORTED");
});

test("extra directives go inside the server block, each ending in one semicolon", (t) => {
  const text = renderSite({
    ...geoip,
    extraDirectives: ["client_max_body_size 10m", "proxy_read_timeout 30s;"],
  }, TEST_PROBE_TOKEN);
  t.true(text.endsWith("    }\n\n    client_max_body_size 10m;\n    proxy_read_timeout 30s;\n}\n"), text);
});

test("IPv6 addresses are bracketed in listen and server lines", (t) => {
  const text = renderSite({ ...geoip, listenAddress: "::1", upstreamAddress: "fd00::11" }, TEST_PROBE_TOKEN);
  t.regex(text, /^ {4}listen \[::1\]:80;$/m);
  t.regex(text, /^ {4}server \[fd00::11\]:7001 max_fails=0;$/m);
});

const invalid = test.macro((t, change: Partial<SiteConfig>, field: string) => {
  const error = t.throws(() => renderSite({ ...geoip, ...change }, TEST_PROBE_TOKEN), { instanceOf: NginxError });
  t.is(error.code, "ERR_NGINX_INVALID_SITE");
  t.true(error.message.includes(field), error.message);
});
test("app with a slash", invalid, { app: "../etc" }, "app");
test("app with a brace (would break out of the config)", invalid, { app: "a}b" }, "app");
test("app with a quote (would break out of the Lua string)", invalid, { app: 'a"b' }, "app");
test("hostname instead of an address", invalid, { upstreamAddress: "localhost" }, "upstreamAddress");
test("listen address with a port", invalid, { listenAddress: "127.0.0.1:80" }, "listenAddress");
test("port 0", invalid, { livePort: 0 }, "livePort");
test("port above 65535", invalid, { listenPort: 70000 }, "listenPort");
test("fractional port", invalid, { livePort: 7001.5 }, "livePort");
test("empty extra directive", invalid, { extraDirectives: ["  "] }, "extraDirectives");
// The agent does not take the coordinator's word for proxy.directives (issue 11, finding 1).
test("a directive that runs Lua in nginx's workers", invalid, { extraDirectives: [`access_by_lua 'os.execute("id > /tmp/x")'`] }, '"access_by_lua" is not an allowed directive');
test("a location block", invalid, { extraDirectives: ["location /static { root /srv; }"] }, '"location" is not an allowed directive');
test("an allowed directive that smuggles in another", invalid, { extraDirectives: ["client_max_body_size 10m; include /etc/shadow"] }, "extraDirectives[0]");

test("the header reads back what was rendered", (t) => {
  t.deepEqual(parseSiteHeader(renderSite({ ...geoip, switchMode: "live", livePort: 7002 }, TEST_PROBE_TOKEN)), {
    app: "geoip",
    protocol: "http",
    mode: "live",
    livePort: 7002,
  });
  t.is(parseSiteHeader("server { listen 80; }\n"), null);
  t.is(parseSiteHeader("# cutover-site app=x protocol=http mode=live live-port=99999\n"), null);
});

test("a named TLS site: listen with ssl and http2, its names, the files with their fingerprint, and the redirect server", (t) => {
  const tls = { certificate: "/etc/ssl/geoip.pem", key: "/etc/ssl/private/geoip.key", fingerprint: "ab".repeat(32) };
  const text = renderSite({ ...geoip, listenPort: 443, virtualHost: { serverNames: ["geoip.example.com"], defaultServer: true, http2: true, tls, redirectHttpPort: 80 } }, TEST_PROBE_TOKEN);
  const lines = text.split("\n").map((line) => line.trim());
  for (const line of [
    "# cutover-listen site=app:geoip listen=127.0.0.11:443 names=geoip.example.com tls=1 http2=1 default=1",
    "# cutover-listen site=app:geoip listen=127.0.0.11:80 names=geoip.example.com tls=0 http2=0 default=0",
    "listen 127.0.0.11:443 ssl http2 default_server;",
    "server_name geoip.example.com;",
    `# TLS files sha256 ${"ab".repeat(32)}`,
    "ssl_certificate /etc/ssl/geoip.pem;",
    "ssl_certificate_key /etc/ssl/private/geoip.key;",
    "listen 127.0.0.11:80;",
    "return 301 https://$host$request_uri;",
  ]) {
    t.true(lines.includes(line), line);
  }
});

test("a server name that is an nginx regex is refused before it reaches the config", (t) => {
  const error = t.throws(() => renderSite({ ...geoip, virtualHost: { serverNames: ["~^(?<x>.+)$"], defaultServer: false, http2: false } }, TEST_PROBE_TOKEN));
  t.regex(error?.message ?? "", /virtualHost\.serverNames must be host names/);
});
