// `npm run bench [-- NAME ...]`: set up (npm ci, build, nginx), then run the
// named benchmarks from bench/ (all when none is named). Each prints a table
// with the conditions it ran under and writes JSON to bench/results/.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build, ensureInstalled, ensureNginx, root } from "./setup.mjs";

ensureInstalled();
ensureNginx();
build();

const available = readdirSync(join(root, "bench")).filter((f) => f.endsWith(".mjs") && !f.startsWith("_")).map((f) => f.replace(/\.mjs$/, "")).sort();
const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const names = args.length > 0 ? args : available;
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`no benchmark "${name}"; available: ${available.join(", ")}`);
    process.exit(2);
  }
}
let failed = false;
for (const name of names) {
  const bench = await import(pathToFileURL(join(root, "bench", `${name}.mjs`)).href);
  const ok = await bench.run(process.argv.slice(2).filter((a) => a.startsWith("--")));
  failed ||= ok === false;
}
process.exit(failed ? 1 : 0);
