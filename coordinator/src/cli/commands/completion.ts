import type { Command } from "commander";
import { EXIT, ExitError } from "../exit-error.js";

/** Every command path ("" for the top, "lock", "hosts label", …) and the words that may follow it there. */
export function completionTree(program: Command): Map<string, string[]> {
  const tree = new Map<string, string[]>();
  const walk = (command: Command, path: string, inherited: string[]) => {
    const options = command.options.map((option) => option.long).filter((long): long is string => long !== undefined);
    const subcommands = command.commands.map((sub) => sub.name()).filter((name) => name !== "help");
    tree.set(path, [...new Set([...subcommands, ...options, ...inherited, "--help"])]);
    // --version is the top's alone.
    const passedOn = [...inherited, ...options.filter((long) => long !== "--version")];
    for (const sub of command.commands) if (sub.name() !== "help") walk(sub, path === "" ? sub.name() : `${path} ${sub.name()}`, passedOn);
  };
  // The top's options (--url, --token, …) are accepted after any command: offered there too.
  walk(program, "", []);
  return tree;
}

/** Words are command names and --flags: nothing a shell would expand. */
const SAFE_WORD = /^[A-Za-z0-9][A-Za-z0-9-]*$|^--[a-z][a-z0-9-]*$/;

/**
 * A bash completion function over `tree`: it walks the words typed so far to the deepest
 * known command path and offers what may follow there; anything else (a spec file, a
 * value) falls back to file names (`-o default`). zsh runs the same through bashcompinit.
 */
export function bashCompletion(tree: Map<string, string[]>): string {
  for (const words of tree.values()) for (const word of words) if (!SAFE_WORD.test(word)) throw new Error(`completion: unexpected word ${JSON.stringify(word)}`);
  const paths = [...tree.keys()].filter((path) => path !== "");
  const cases = [...tree].map(([path, words]) => `    "${path}") words="${words.join(" ")}" ;;`).join("\n");
  return `# cutover shell completion (cutover completion bash): source it, or put it in /etc/bash_completion.d/cutover
_cutover() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" next word i words=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    next="\${path:+$path }$word"
    case "$next" in
      ${paths.map((path) => `"${path}"`).join("|")}) path="$next" ;;
    esac
  done
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _cutover cutover
`;
}

export function zshCompletion(tree: Map<string, string[]>): string {
  return `# cutover shell completion (cutover completion zsh): source it from ~/.zshrc
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(tree).split("\n").slice(1).join("\n")}`;
}

export function registerCompletion(program: Command): void {
  program
    .command("completion")
    .description("print a shell completion script: `source <(cutover completion bash)`, or in ~/.zshrc `source <(cutover completion zsh)`")
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      const tree = completionTree(program);
      if (shell === "bash") process.stdout.write(bashCompletion(tree));
      else if (shell === "zsh") process.stdout.write(zshCompletion(tree));
      else throw new ExitError(`completion: bash or zsh, not "${shell}"`, EXIT.usage);
    });
}
