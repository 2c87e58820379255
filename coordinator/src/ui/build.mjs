// Builds the dashboard into coordinator/dist/ui (served at /ui/): type-check, bundle with
// esbuild, copy the page and its stylesheet, and print the gzipped size of what a first load fetches.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const out = join(here, "..", "..", "dist", "ui");

/** The budget for the JavaScript of a first load, gzipped. */
const FIRST_LOAD_JS_BUDGET_BYTES = 200 * 1024;

try {
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", here], { stdio: "inherit" });
} catch {
  console.error("ui: the dashboard does not type-check (above)");
  process.exit(1);
}
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "main.tsx")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  jsx: "automatic",
  jsxImportSource: "preact",
  legalComments: "none",
  logLevel: "warning",
});
for (const file of ["index.html", "app.css"]) copyFileSync(join(here, file), join(out, file));

const gzipped = (file) => gzipSync(readFileSync(join(out, file)), { level: 9 }).length;
const js = gzipped("app.js");
const total = js + gzipped("index.html") + gzipped("app.css");
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
console.log(`ui: dist/ui/app.js ${kb(js)} gzipped (first load ${kb(total)} with the page and stylesheet; budget ${kb(FIRST_LOAD_JS_BUDGET_BYTES)} of JavaScript)`);
if (js > FIRST_LOAD_JS_BUDGET_BYTES) {
  console.error(`ui: app.js is over the first-load budget`);
  process.exit(1);
}
