import test from "ava";
import type { HostReleasesView } from "../../api/releases.js";
import { renderReleases } from "./releases.js";

const SHA = "a".repeat(64);
const host = (name: string, view: Partial<HostReleasesView>): HostReleasesView => ({ name, state: "online", live: null, reporting: "reported", reportedAt: null, releases: [], ...view });

test("the table has a row per host: its state, the live release and what it keeps, newest first, or why that is not known", (t) => {
  const rendered = renderReleases({
    app: "geoip",
    hosts: [
      host("web-1", {
        live: "v1",
        releases: [
          { release: "v3", live: false, sha256: SHA, unpackedAt: "" },
          { release: "v1", live: true, sha256: SHA, unpackedAt: "" },
        ],
      }),
      host("web-2", { state: "unreachable", reporting: "awaiting" }),
      host("web-3", { live: "v2", reporting: "unsupported" }),
      host("web-4", {}),
    ],
  });
  t.is(
    rendered,
    [
      "HOST   STATE        LIVE  KEPT",
      "web-1  online       v1    v3, v1 (live)",
      "web-2  unreachable  -     (not reported yet)",
      "web-3  online       v2    (unknown: its agent does not report kept releases)",
      "web-4  online       -     none",
    ].join("\n"),
  );
});

test("what hosts report reaches the terminal escaped", (t) => {
  const rendered = renderReleases({ app: "geoip", hosts: [host("web-1\u001b[2J", { live: "v1\u202e", releases: [{ release: "v1\u0007", live: true, sha256: SHA, unpackedAt: "" }] })] });
  t.false(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/.test(rendered));
  t.regex(rendered, /web-1\\x1b\[2J\s+online\s+v1\\u202e\s+v1\\x07 \(live\)/);
});

test("an app no host runs says so", (t) => {
  t.is(renderReleases({ app: "geoip", hosts: [] }), "no host runs geoip");
});
