import test from "ava";
import { bundleSignedText, compareVersions, isValidVersion } from "./index.js";

const orders = test.macro({
  exec(t, a: string, b: string, expected: -1 | 0 | 1) {
    t.is(compareVersions(a, b), expected);
    t.is(compareVersions(b, a), (expected === 0 ? 0 : -expected) as -1 | 0 | 1, "and the other way round");
  },
  title: (_title, a: string, b: string, expected: number) => `${a} ${expected < 0 ? "<" : expected > 0 ? ">" : "="} ${b}`,
});

test(orders, "0.1.0", "0.1.0", 0);
test(orders, "0.1.0", "0.1.1", -1);
test(orders, "0.2.0", "0.10.0", -1);
test(orders, "1.0.0", "0.99.99", 1);
test(orders, "0.1.1-upgrade", "0.1.1", -1);
test(orders, "0.1.1-upgrade", "0.1.0", 1);
test(orders, "1.0.0-rc.2", "1.0.0-rc.10", -1);
test(orders, "1.0.0-rc", "1.0.0-rc.1", -1);
test(orders, "1.0.0-1", "1.0.0-alpha", -1);
test(orders, "1.0.0-alpha", "1.0.0-beta", -1);

for (const bad of ["", "1", "1.2", "v1.2.3", "1.2.3-", "1.2.3 ", "01.2.x"]) {
  test(`"${bad}" is not a version`, (t) => {
    t.false(isValidVersion(bad));
    t.throws(() => compareVersions(bad, "0.1.0"), { message: /is not a version/ });
  });
}

test("the signed text of a bundle is install.sh's: context, colon, sha256 hex", (t) => {
  t.is(bundleSignedText("ab".repeat(32)), `cutover.v1.agent-bundle:${"ab".repeat(32)}`);
});
