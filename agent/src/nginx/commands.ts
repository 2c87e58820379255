// Every nginx invocation as data: the runner executes these, tests compare them.
// Signals (reload, stop) are sent with process.kill to the master's pid, not by
// spawning `nginx -s`, which would parse the whole config again just to find the pid.

export const DEFAULT_NGINX_BINARY = "/usr/sbin/nginx";

/** One process to spawn: argv, no shell. */
export interface Command {
  file: string;
  args: string[];
  cwd?: string;
}

function prefixArgs(prefix: string | undefined): string[] {
  return prefix === undefined ? [] : ["-p", prefix];
}

/** `nginx -t` of a main config; nginx's verdict is on stderr. */
export function testCommand(binary: string, conf: string, prefix?: string): Command {
  return { file: binary, args: [...prefixArgs(prefix), "-c", conf, "-t"] };
}

/** Dumps the effective config (`-T`): how system mode learns which modules the host loads. */
export function dumpCommand(binary: string, conf: string): Command {
  return { file: binary, args: ["-c", conf, "-T"] };
}

/**
 * Starts a master that daemonizes (the config keeps the default `daemon on`), so it
 * outlives the agent; the command exits once the listen sockets are bound, with bind
 * errors on stderr. cwd is the prefix so nothing ties the master to the agent's cwd.
 */
export function startCommand(binary: string, prefix: string, conf: string): Command {
  return { file: binary, args: [...prefixArgs(prefix), "-c", conf], cwd: prefix };
}

/** `nginx -V`: version and configure flags (static modules, default paths) on stderr. */
export function versionCommand(binary: string): Command {
  return { file: binary, args: ["-V"] };
}
