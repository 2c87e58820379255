// Shared by the benchmarks: a fake test context for the fleet harness,
// conditions of the machine, and writing results.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The harness wants ava's `t.teardown`; benchmarks collect and run them at the end. */
export function benchContext() {
  const teardowns = [];
  return {
    teardown: (fn) => teardowns.push(fn),
    log: (...args) => console.log(...args),
    async close() {
      for (const fn of teardowns.reverse()) await fn();
    },
  };
}

/** The commit measured, with "+changes" when the tree differs from it (other work in progress shares the tree). */
function commit() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: root, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head}+changes` : head;
  } catch {
    return "unknown";
  }
}

/** The machine, the code, and how busy the machine was when the figures were taken (the 1-minute load average, other work included). */
export function conditions(extra = {}) {
  return { cores: cpus().length, cpu: cpus()[0]?.model ?? "unknown", memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, commit: commit(), date: new Date().toISOString(), loadavg1m: loadavg()[0], ...extra };
}

export function writeResult(name, result) {
  const path = join(root, "bench", "results", `${name}.json`);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`results written to ${path}`);
}

export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

export const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

export function option(args, name, fallback) {
  const hit = args.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : fallback;
}
