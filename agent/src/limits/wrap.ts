import { join } from "node:path";
import type { ProcessSpec } from "../process/index.js";
import type { LimitHandle } from "./handle.js";

/** POSIX shell that runs the wrapper; dash on Debian. */
export const DEFAULT_SHELL = "/bin/sh";
/** util-linux's setpriv (Essential on Debian): drops to run.user after the move, which needs root. */
export const DEFAULT_SETPRIV = "/usr/bin/setpriv";
/** Exit code of the wrapper when it cannot join a cgroup (the app was not started), as env(1) and docker use 125. */
export const WRAPPER_FAILED_EXIT_CODE = 125;
/** $0 of the wrapper shell, as `ps` shows it during the instant before the app replaces it. */
const WRAPPER_NAME = "cutover-limits";

export interface WrapOptions {
  shell?: string;
  setpriv?: string;
}

export interface WrappedSpec {
  /** Spawn this instead of the app's spec: same env and cwd, and it becomes the app (same pid) once inside its cgroups. */
  /** Its `shownArgv` is the app's own argv: what /proc shows once the wrapper has exec'd it. */
  spec: ProcessSpec;
}

/**
 * Builds the command that starts `spec` inside the instance's cgroups with no
 * moment outside them: a shell writes its own pid into each cgroup.procs,
 * then execs the app (same pid, same process group, argv passed through
 * untouched). With run.user the shell stays root for the move and execs the
 * app through setpriv, which switches user the way spawn would (no
 * supplementary groups). Pure: nothing is run or read.
 */
export function wrapInCgroup(spec: ProcessSpec, handle: Pick<LimitHandle, "dirs">, options: WrapOptions = {}): WrappedSpec {
  const joins = handle.dirs.map((dir) => shellQuote(join(dir, "cgroup.procs"))).join(" ");
  const dropUser =
    spec.uid !== undefined || spec.gid !== undefined
      ? `${shellQuote(options.setpriv ?? DEFAULT_SETPRIV)} ${spec.uid !== undefined ? `--reuid=${spec.uid} ` : ""}${spec.gid !== undefined ? `--regid=${spec.gid} ` : ""}--clear-groups -- `
      : "";
  const script =
    `for f in ${joins}; do echo $$ > "$f" || { echo "cutover: cannot move into the cgroup $f; the app was not started" >&2; exit ${WRAPPER_FAILED_EXIT_CODE}; }; done; ` +
    `exec ${dropUser}"$@"`;
  const { uid: _uid, gid: _gid, ...rest } = spec;
  const appArgv = spec.shownArgv ?? [spec.file, ...spec.args];
  return {
    spec: { ...rest, file: options.shell ?? DEFAULT_SHELL, args: ["-c", script, WRAPPER_NAME, spec.file, ...spec.args], shownArgv: appArgv },
  };
}

/** 'text' for sh, with embedded single quotes closed, escaped and reopened. */
export function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
