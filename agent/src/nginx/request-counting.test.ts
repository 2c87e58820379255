import test from "ava";
import { LATENCY_BUCKETS_MS } from "@cutover/protocol";
import { countingBlock, parseCounters } from "./request-counting.js";

test("GET /requests parses into counters by site, app and upstream; unknown lines are skipped", (t) => {
  const text = [
    "since\t1764640000000",
    "app\tgeoip\t127.0.0.11:7001\tn\t12",
    "app\tgeoip\t127.0.0.11:7001\t2xx\t11",
    "app\tgeoip\t127.0.0.11:7001\t5xx\t1",
    "app\tgeoip\t127.0.0.11:7001\tue\t1",
    "app\tgeoip\t127.0.0.11:7001\tsum\t84.5",
    "app\tgeoip\t127.0.0.11:7001\tb1\t10",
    `app\tgeoip\t127.0.0.11:7001\tb${LATENCY_BUCKETS_MS.length + 1}\t2`,
    "lb\tgeoip\t127.0.0.12:8080\tn\t3",
    "garbage",
    "other\tgeoip\tx\tn\t1",
  ].join("\n");
  const { since, upstreams } = parseCounters(text);
  t.is(since, 1764640000000);
  t.is(upstreams.length, 2);
  const app = upstreams.find((u) => u.site === "app");
  t.like(app, { app: "geoip", upstream: "127.0.0.11:7001", requests: 12, upstreamErrors: 1, latencySumMs: 84.5, byClass: { "2xx": 11, "3xx": 0, "4xx": 0, "5xx": 1 } });
  t.is(app?.buckets[0], 10);
  t.is(app?.buckets.at(-1), 2, "past every bound");
  t.like(upstreams.find((u) => u.site === "lb"), { upstream: "127.0.0.12:8080", requests: 3 });
});

test("the log block counts into the requests dict under the site kind and app, after the site's own log-phase Lua", (t) => {
  const block = countingBlock("lb", "geoip", 0, ["release()"]).join("\n");
  t.regex(block, /^log_by_lua_block \{\n {4}release\(\)\n {4}local d = ngx\.shared\.cutover_requests/);
  t.true(block.includes('local k = "lb\\tgeoip\\t" .. upstream .. "\\t"'));
  t.true(block.includes(`for i, bound in ipairs({ ${LATENCY_BUCKETS_MS.join(", ")} }) do`));
});
