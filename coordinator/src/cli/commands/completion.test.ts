import test from "ava";
import { execFileSync } from "node:child_process";
import { buildProgram } from "../main.js";
import { bashCompletion, completionTree } from "./completion.js";

/** What real bash offers for the words typed so far (the last one being completed), with the script sourced. */
function complete(script: string, words: string[]): string[] {
  const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _cutover; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync("bash", ["--norc", "--noprofile", "-c", line], { encoding: "utf8" }).split("\n").filter((w) => w !== "");
}

const script = bashCompletion(completionTree(buildProgram()));

test("bash completes the verbs, then a verb's own subcommands and flags, from the program itself", (t) => {
  t.deepEqual(complete(script, ["cutover", "lo"]), ["lock", "logs"]);
  t.deepEqual(complete(script, ["cutover", "lock", ""]).slice(0, 3), ["acquire", "status", "release"]);
  t.deepEqual(complete(script, ["cutover", "lock", "acquire", "--m"]), ["--message"]);
  t.deepEqual(complete(script, ["cutover", "deploy", "app.yml", "--release", "v2", "--pl"]), ["--plan"]);
  // The global flags after a verb, --version only at the top.
  t.deepEqual(complete(script, ["cutover", "status", "--t"]), ["--token"]);
  t.deepEqual(complete(script, ["cutover", "status", "--ver"]), []);
  t.deepEqual(complete(script, ["cutover", "--ver"]), ["--version"]);
});

test("every command of the program is in the tree, and none offers a word twice", (t) => {
  const tree = completionTree(buildProgram());
  for (const command of buildProgram().commands) if (command.name() !== "help") t.true(tree.has(command.name()), command.name());
  for (const [path, words] of tree) t.is(new Set(words).size, words.length, path);
});
