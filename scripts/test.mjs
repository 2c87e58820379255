// `npm test`: set up (npm ci, build, nginx), run every test with ava, and end
// with one line `N passed, N failed`. Extra arguments go to ava (file globs, --match).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { build, ensureInstalled, ensureNginx, ensureTestPackages, root } from "./setup.mjs";

try {
  ensureInstalled();
  ensureNginx();
  ensureTestPackages();
  build();
} catch (error) {
  // The set-up or the build failed (its output is above): no test ran, and CI reads this line.
  console.error(`test set-up failed: ${error.message.split("\n")[0]}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}

const ava = spawn(process.execPath, [join(root, "node_modules", "ava", "entrypoints", "cli.mjs"), "--tap", ...process.argv.slice(2)], {
  cwd: root,
  stdio: ["ignore", "pipe", "inherit"],
});
const counts = { pass: 0, fail: 0, skip: 0 };
const lines = createInterface({ input: ava.stdout });
lines.on("line", (line) => {
  console.log(line);
  const summary = /^# (pass|fail|skip) (\d+)$/.exec(line);
  if (summary) counts[summary[1]] = Number(summary[2]);
});
ava.on("close", (code) => {
  const failed = counts.fail + (code !== 0 && counts.fail === 0 ? 1 : 0);
  console.log(`${counts.pass} passed, ${failed} failed${counts.skip ? `, ${counts.skip} skipped` : ""}`);
  process.exit(code ?? 1);
});
