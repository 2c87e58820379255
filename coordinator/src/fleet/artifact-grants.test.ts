import test from "ava";
import { ArtifactGrants, GRANT_GRACE_MS } from "./artifact-grants.js";

test("a host may fetch an artifact only after a command naming it, until its deadline and grace", (t) => {
  let now = 1_000;
  const grants = new ArtifactGrants(() => now);
  t.false(grants.allows("host-a", "aa"));
  grants.grant("host-a", "aa", now + 5_000);
  t.true(grants.allows("host-a", "aa"));
  t.false(grants.allows("host-b", "aa"), "another host is not granted by host-a's command");
  t.false(grants.allows("host-a", "bb"), "nor another artifact");
  now += 5_000 + GRANT_GRACE_MS;
  t.true(grants.allows("host-a", "aa"));
  now += 1;
  t.false(grants.allows("host-a", "aa"));
});

test("a later command extends a grant; forgetting a host drops its grants", (t) => {
  let now = 0;
  const grants = new ArtifactGrants(() => now);
  grants.grant("h", "aa", 1_000);
  grants.grant("h", "aa", 100);
  now = 1_000 + GRANT_GRACE_MS;
  t.true(grants.allows("h", "aa"), "the shorter, later grant does not cut the longer one");
  grants.forget("h");
  t.false(grants.allows("h", "aa"));
});
