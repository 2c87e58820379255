import { shellQuote } from "../commands/hosts-join.js";
import { isTrue, type InventoryHost } from "./inventory.js";

/**
 * The system ssh and scp, as argv arrays (built here, run by hosts-bootstrap): whatever
 * ~/.ssh/config, ssh-agent and known_hosts say applies, as with Ansible. BatchMode: a host
 * whose key is unknown or that asks for a password fails (and says so) instead of prompting.
 */
export interface SshTarget {
  /** ansible_host, else the inventory name. */
  host: string;
  port?: number;
  user?: string;
  identity?: string;
  /** ssh -F FILE (--ssh-config). */
  config?: string;
  /** ansible_become: the installer runs under `sudo -n`. */
  become: boolean;
}

export const SSH_CONNECT_TIMEOUT_S = 10;

/** The target of an inventory host, the command line's --user / --identity as defaults. */
export function sshTarget(host: InventoryHost, defaults: { user?: string; identity?: string; config?: string }): SshTarget {
  const portText = host.vars.ansible_port ?? host.vars.ansible_ssh_port;
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new RangeError(`${host.name}: ansible_port "${portText}" is not a port`);
  return {
    host: host.vars.ansible_host ?? host.vars.ansible_ssh_host ?? host.name,
    ...(port !== undefined && { port }),
    ...((host.vars.ansible_user ?? host.vars.ansible_ssh_user ?? defaults.user) !== undefined && { user: host.vars.ansible_user ?? host.vars.ansible_ssh_user ?? defaults.user }),
    ...((host.vars.ansible_ssh_private_key_file ?? defaults.identity) !== undefined && { identity: host.vars.ansible_ssh_private_key_file ?? defaults.identity }),
    ...(defaults.config !== undefined && { config: defaults.config }),
    become: isTrue(host.vars.ansible_become),
  };
}

/** user@host, as ssh and scp name it. */
export function destination(target: SshTarget): string {
  return target.user ? `${target.user}@${target.host}` : target.host;
}

function commonOptions(target: SshTarget): string[] {
  return [
    "-o", "BatchMode=yes",
    "-o", `ConnectTimeout=${SSH_CONNECT_TIMEOUT_S}`,
    ...(target.config ? ["-F", target.config] : []),
    ...(target.identity ? ["-i", target.identity] : []),
  ];
}

/** ssh running one remote command (a shell line). */
export function sshArgv(target: SshTarget, remote: string): string[] {
  return ["ssh", ...commonOptions(target), ...(target.port ? ["-p", String(target.port)] : []), "--", destination(target), remote];
}

/** scp copying local files into a remote directory. */
export function scpArgv(target: SshTarget, files: string[], remoteDir: string): string[] {
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  return ["scp", "-q", ...commonOptions(target), ...(target.port ? ["-P", String(target.port)] : []), "--", ...files, `${target.user ? `${target.user}@` : ""}${host}:${remoteDir}/`];
}

/** A private directory on the host for the two files; its path is all it prints. */
export const MAKE_REMOTE_DIR = "mktemp -d /tmp/cutover-bootstrap.XXXXXX";

/**
 * install.sh from `dir`, as root (sudo -n with become: no password prompt to hang on), then the
 * directory removed whatever the outcome; the installer's exit code is the command's.
 */
export function installCommand(target: SshTarget, dir: string, installArgs: string[]): string {
  const run = [...(target.become ? ["sudo", "-n"] : []), "bash", `${dir}/install.sh`, ...installArgs].map(shellQuote).join(" ");
  const cleanup = `${target.become ? "sudo -n " : ""}rm -rf ${shellQuote(dir)}`;
  return `${run}; rc=$?; ${cleanup}; exit $rc`;
}
