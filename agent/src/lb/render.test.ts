import test from "ava";
import { TEST_PROBE_TOKEN } from "../nginx/test-probe-token.js";
import { lbRevision, type LbSiteConfig } from "./config.js";
import { renderLbSite } from "./render.js";

const backends: LbSiteConfig["backends"] = [
  { host: "app-1", address: "10.0.0.1", port: 7001, weight: 1, state: "up", group: "stable" },
  { host: "app-2", address: "10.0.0.2", port: 7001, weight: 3, state: "up", group: "stable" },
  { host: "app-3", address: "10.0.0.3", port: 7001, weight: 1, state: "up", group: "canary" },
];
const geoip: LbSiteConfig = { app: "geoip", listenAddress: "10.0.0.9", listenPort: 80, switchMode: "reload", backends };

function header(config: LbSiteConfig): string {
  return `# Written by cutover-agent (front load balancer); edits are overwritten on the next change.
# cutover-lb-site ${JSON.stringify(config)}
# cutover-listen site=lb:${config.app} listen=${config.listenAddress}:${config.listenPort} names=* tls=0 http2=0 default=0`;
}

const SERVER_HEAD = `server {
    listen 10.0.0.9:80;

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Cutover-Probe "";
    # A backend that refuses or times out: the request (if idempotent) goes to another one.
    proxy_next_upstream error timeout;
    proxy_hide_header X-Cutover-Backend;
    proxy_hide_header X-Cutover-Lb-Revision;`;

/** The backend map, and what the agent's probes (only they) are told: the backend and the config's revision. */
const backendMaps = (config: LbSiteConfig) => `# The peer that answered: the last of $upstream_addr's list when a failed try moved the request.
map $upstream_addr $cutover_lb_geoip_backend {
    volatile;
    "~([^\\s,]+)$" $1;
    default "";
}
map $http_x_cutover_probe $cutover_lb_geoip_backend_shown {
    default "";
    "${TEST_PROBE_TOKEN}" $cutover_lb_geoip_backend;
}
map $http_x_cutover_probe $cutover_lb_geoip_revision_shown {
    default "";
    "${TEST_PROBE_TOKEN}" "${lbRevision(config)}";
}`;

const PROBE_ONLY_HEADERS = `    add_header X-Cutover-Backend $cutover_lb_geoip_backend_shown always;
    add_header X-Cutover-Lb-Revision $cutover_lb_geoip_revision_shown always;`;

test("reload mode, one pool: every up backend with its weight, group ignored, keepalive, exactly", (t) => {
  t.is(
    renderLbSite(geoip, { probeToken: TEST_PROBE_TOKEN }),
    `${header(geoip)}
upstream cutover-lb.geoip.pool {
    server 10.0.0.1:7001 weight=1;  # app-1
    server 10.0.0.2:7001 weight=3;  # app-2
    server 10.0.0.3:7001 weight=1;  # app-3
    keepalive 32;
}

${backendMaps(geoip)}

${SERVER_HEAD}
${PROBE_ONLY_HEADERS}

    location / {
        proxy_pass http://cutover-lb.geoip.pool;
    }
}
`,
  );
});

test("reload mode: drain, down and weight-0 backends are left out of the upstream and listed in a comment", (t) => {
  const config: LbSiteConfig = {
    ...geoip,
    backends: [
      { ...backends[0]!, state: "drain" },
      { ...backends[1]!, weight: 0 },
      { ...backends[2]!, state: "down" },
      { host: "app-4", address: "10.0.0.4", port: 7001, weight: 2, state: "up", group: "stable" },
    ],
  };
  const text = renderLbSite(config, { probeToken: TEST_PROBE_TOKEN });
  t.true(
    text.includes(`# No new requests: app-1 10.0.0.1:7001 (drain), app-2 10.0.0.2:7001 (weight 0), app-3 10.0.0.3:7001 (down)
upstream cutover-lb.geoip.pool {
    server 10.0.0.4:7001 weight=2;  # app-4
    keepalive 32;
}
`),
    text,
  );
  t.false(/server 10\.0\.0\.[123]:/.test(text));
});

const withHeaderPin: LbSiteConfig = {
  ...geoip,
  canary: { cookie: "cutover_canary", weightPercent: 10, pin: { kind: "header", name: "X-Canary", value: "beta.1" } },
};

test("reload mode, canary with a header pin: group upstreams, pin/sticky/split maps, upstream and Set-Cookie by route, exactly", (t) => {
  t.is(
    renderLbSite(withHeaderPin, { probeToken: TEST_PROBE_TOKEN }),
    `${header(withHeaderPin)}
upstream cutover-lb.geoip.stable {
    server 10.0.0.1:7001 weight=1;  # app-1
    server 10.0.0.2:7001 weight=3;  # app-2
    keepalive 32;
}

upstream cutover-lb.geoip.canary {
    server 10.0.0.3:7001 weight=1;  # app-3
    keepalive 32;
}

# Pinned users (header X-Canary) always reach the canary.
map $http_x_canary $cutover_lb_geoip_pin {
    "~^beta\\.1$" pin;
    default "";
}

# Returning users keep the group their cookie names.
map $cookie_cutover_canary $cutover_lb_geoip_sticky {
    "~^canary$" canary;
    "~^stable$" stable;
    default "";
}

# New users: 10% to the canary.
split_clients "\${request_id}" $cutover_lb_geoip_new {
    10% canary;
    * stable;
}

map "$cutover_lb_geoip_pin:$cutover_lb_geoip_sticky:$cutover_lb_geoip_new" $cutover_lb_geoip_route {
    "~^pin:" canary;
    "~^:canary:" canary;
    "~^:stable:" stable;
    "~^::canary$" new-canary;
    default new-stable;
}

map $cutover_lb_geoip_route $cutover_lb_geoip_upstream {
    canary cutover-lb.geoip.canary;
    new-canary cutover-lb.geoip.canary;
    default cutover-lb.geoip.stable;
}

map $cutover_lb_geoip_route $cutover_lb_geoip_setcookie {
    new-canary "cutover_canary=canary; Path=/; HttpOnly";
    new-stable "cutover_canary=stable; Path=/; HttpOnly";
    default "";
}

${backendMaps(withHeaderPin)}

${SERVER_HEAD}
${PROBE_ONLY_HEADERS}
    add_header Set-Cookie $cutover_lb_geoip_setcookie always;

    location / {
        proxy_pass http://$cutover_lb_geoip_upstream;
    }
}
`,
  );
});

test("reload mode, canary with a cookie pin: only the pin map's source and comment differ from the header pin", (t) => {
  const config: LbSiteConfig = { ...geoip, canary: { ...withHeaderPin.canary!, pin: { kind: "cookie", name: "beta_user", value: "yes" } } };
  const cookie = renderLbSite(config, { probeToken: TEST_PROBE_TOKEN }).split("\n");
  const headerPin = renderLbSite(withHeaderPin, { probeToken: TEST_PROBE_TOKEN }).split("\n");
  t.deepEqual(
    cookie.filter((line) => !headerPin.includes(line)).filter((line) => !line.startsWith("# cutover-lb-site ") && !line.includes(TEST_PROBE_TOKEN)),
    ["# Pinned users (cookie beta_user) always reach the canary.", "map $cookie_beta_user $cutover_lb_geoip_pin {", '    "~^yes$" pin;'],
  );
});

test("reload mode, canary without a pin: the route map reads only the sticky cookie and the split, exactly", (t) => {
  const text = renderLbSite({ ...geoip, canary: { cookie: "cutover_canary", weightPercent: 12.5 } }, { probeToken: TEST_PROBE_TOKEN });
  t.false(text.includes("_pin"));
  t.true(text.includes(`split_clients "\${request_id}" $cutover_lb_geoip_new {\n    12.5% canary;\n    * stable;\n}`));
  t.true(
    text.includes(`map "$cutover_lb_geoip_sticky:$cutover_lb_geoip_new" $cutover_lb_geoip_route {
    "~^canary:" canary;
    "~^stable:" stable;
    "~^:canary$" new-canary;
    default new-stable;
}`),
  );
});

test("reload mode, canary group with no up backend: everyone goes to stable, no canary upstream, new users get 'stable'", (t) => {
  const text = renderLbSite({ ...withHeaderPin, backends: [backends[0]!, { ...backends[2]!, state: "drain" }] }, { probeToken: TEST_PROBE_TOKEN });
  t.false(text.includes("upstream cutover-lb.geoip.canary"));
  t.true(text.includes("# New users: 0% to the canary (configured 10%, but a group has no backend).\n"));
  t.true(text.includes(`split_clients "\${request_id}" $cutover_lb_geoip_new {\n    * stable;\n}`));
  t.true(
    text.includes(`map $cutover_lb_geoip_route $cutover_lb_geoip_upstream {
    canary cutover-lb.geoip.stable;
    new-canary cutover-lb.geoip.stable;
    default cutover-lb.geoip.stable;
}`),
  );
});

test("reload mode, stable group with no up backend: everyone goes to the canary", (t) => {
  const text = renderLbSite({ ...withHeaderPin, backends: [{ ...backends[0]!, state: "down" }, backends[2]!] }, { probeToken: TEST_PROBE_TOKEN });
  t.false(text.includes("upstream cutover-lb.geoip.stable"));
  t.true(text.includes(`split_clients "\${request_id}" $cutover_lb_geoip_new {\n    100% canary;\n}`));
  t.true(text.includes("    default cutover-lb.geoip.canary;\n"));
});

test("IPv6 addresses are bracketed in listen and server lines", (t) => {
  const text = renderLbSite({ ...geoip, listenAddress: "::1", backends: [{ ...backends[0]!, address: "fd00::11" }] }, { probeToken: TEST_PROBE_TOKEN });
  t.regex(text, /^ {4}listen \[::1\]:80;$/m);
  t.regex(text, /^ {4}server \[fd00::11\]:7001 weight=1; {2}# app-1$/m);
});

test("names of an app with '-' or capitals cannot meet another app's in nginx's case-insensitive namespaces", (t) => {
  const names = (app: string) => renderLbSite({ ...geoip, app, canary: { cookie: "c", weightPercent: 5 } }, { probeToken: TEST_PROBE_TOKEN }).match(/\$cutover_lb_\w+|cutover-lb\.[\w.]+/g)!;
  const a = new Set(names("my-app").map((n) => n.toLowerCase()));
  for (const other of ["my_app", "My-app", "myapp", "my-App"]) {
    t.false(names(other).some((n) => a.has(n.toLowerCase())), other);
  }
  t.true(names("my-app").includes("cutover-lb.my_0app.pool") || names("my-app").includes("cutover-lb.my_0app.stable"));
});

const live: LbSiteConfig = { ...withHeaderPin, switchMode: "live" };

test("live mode: one Lua-balanced upstream, its own dict and control socket, keepalive after the balancer, the state embedded", (t) => {
  const text = renderLbSite(live, { controlSocket: "/var/lib/cutover/nginx/lb-geoip.sock", probeToken: TEST_PROBE_TOKEN });
  const lines = text.split("\n").map((line) => line.trim());
  t.true(lines.includes("lua_shared_dict cutover_lb.geoip 1m;"));
  t.true(lines.includes("upstream cutover-lb.geoip.live {"));
  t.true(lines.includes("proxy_pass http://cutover-lb.geoip.live;"));
  t.true(lines.includes("listen unix:/var/lib/cutover/nginx/lb-geoip.sock;"));
  t.true(lines.includes("proxy_next_upstream error timeout;"));
  const balancer = lines.indexOf("balancer_by_lua_block {");
  t.true(balancer > 0 && lines.indexOf("keepalive 32;") > balancer, "keepalive must follow balancer_by_lua to wrap its peer");
  const state = lines.slice(lines.indexOf("local FILE_STATE = [==[") + 1, lines.indexOf("]==]"));
  t.deepEqual(state, [
    `revision ${lbRevision(live)}`,
    "canary cutover_canary 10",
    "pin header X-Canary beta.1",
    "backend app-1 10.0.0.1 7001 1 up stable",
    "backend app-2 10.0.0.2 7001 3 up stable",
    "backend app-3 10.0.0.3 7001 1 up canary",
  ]);
  t.false(text.includes("split_clients"), "live mode routes in Lua");
});

test("live mode: a weight/state/canary change alters only the header, the comment and the embedded state, not the structure", (t) => {
  const before = renderLbSite(live, { probeToken: TEST_PROBE_TOKEN }).split("\n");
  const changedConfig: LbSiteConfig = {
    ...live,
    backends: [{ ...backends[0]!, state: "drain" }, { ...backends[1]!, weight: 7 }, backends[2]!],
    canary: { cookie: "cutover_canary", weightPercent: 50 },
  };
  const after = renderLbSite(changedConfig, { probeToken: TEST_PROBE_TOKEN }).split("\n");
  const changed = after.filter((line) => !before.includes(line)).map((line) => line.trim());
  t.deepEqual(changed.map((line) => line.split(" ")[0] + " " + (line.split(" ")[1] ?? "")), [
    "# cutover-lb-site",
    "# No",
    `revision ${lbRevision(changedConfig)}`,
    "canary cutover_canary",
    "backend app-1",
    "backend app-2",
  ]);
});

test("the default control socket is under /run/cutover, beside system mode's", (t) => {
  t.true(renderLbSite(live, { probeToken: TEST_PROBE_TOKEN }).includes("    listen unix:/run/cutover/lb-geoip.sock;\n"));
});
