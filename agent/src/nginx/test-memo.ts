import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";

/** Passing inputs remembered: a few, for deploys of several apps on one host that overlap. */
const REMEMBERED = 4;

/**
 * The inputs of `nginx -t` that passed, so the same bytes are not tested twice: a switch
 * tests its config while the new color boots (switch.ts, pretestSwitch), and the switch
 * itself then finds its `nginx -t` already answered. An input is the test config's text
 * and the content of every file it includes, read when the test runs; any byte that
 * differs (another app's switch in between, a rewritten main config) is a new input and is
 * tested again. Only for a config whose every file the caller lists (the managed nginx):
 * nginx -t reads nothing else that could change its verdict, since a site's directives
 * cannot name files (packages/spec, directives.ts).
 */
export class TestMemo {
  private readonly passed: string[] = [];

  /** The key of one test input: the config text and each included file (path and bytes, or missing). */
  key(configText: string, includedFiles: readonly string[]): string {
    const hash = createHash("sha256").update(configText);
    for (const path of includedFiles) {
      hash.update(`\0${path}\0`);
      try {
        hash.update(readFileSync(path));
      } catch {
        hash.update("\0missing");
      }
    }
    return hash.digest("hex");
  }

  has(key: string): boolean {
    return this.passed.includes(key);
  }

  remember(key: string): void {
    if (this.has(key)) return;
    this.passed.push(key);
    if (this.passed.length > REMEMBERED) this.passed.shift();
  }
}
