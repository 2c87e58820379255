// Generates the static protobufjs code for proto/cutover/v1/*.proto into gen/.
// Runs at build time only; the runtime never loads .proto files.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync, readFileSync, statSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = join(here, "..");
const protoRoot = join(pkg, "..", "..", "proto");
const protoDir = join(protoRoot, "cutover", "v1");
const outDir = join(pkg, "gen");
const outJs = join(outDir, "proto.js");
const outDts = join(outDir, "proto.d.ts");

const protos = readdirSync(protoDir).filter((f) => f.endsWith(".proto")).map((f) => join(protoDir, f)).sort();
const newest = Math.max(...protos.map((f) => statSync(f).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
if (existsSync(outJs) && existsSync(outDts) && statSync(outDts).mtimeMs >= newest) process.exit(0);

const require = createRequire(import.meta.url);
const cliDir = dirname(require.resolve("protobufjs-cli/package.json"));
const pbjs = join(cliDir, "bin", "pbjs");
const pbts = join(cliDir, "bin", "pbts");
mkdirSync(outDir, { recursive: true });
execFileSync(process.execPath, [pbjs, "-t", "static-module", "-w", "es6", "--force-number", "--no-delimited",
  "-p", protoRoot, "-o", outJs, ...protos], { stdio: "inherit" });
// protobufjs/minimal has no "exports" entry for the bare path under NodeNext; name the file.
writeFileSync(outJs, readFileSync(outJs, "utf8").replace(/from "protobufjs\/minimal"/g, 'from "protobufjs/minimal.js"'));
execFileSync(process.execPath, [pbts, "-o", outDts, outJs], { stdio: "inherit" });
console.log(`generated ${outJs} from ${protos.length} .proto files`);
