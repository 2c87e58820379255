import { ProcessError } from "./errors.js";
import type { Color } from "./record.js";
import { resolveRunAs, type RootApps } from "./run-as.js";
import type { UserLookup } from "./users.js";

/** The app spec's `run` section, as the agent receives it. */
export interface RunSection {
  /** argv, no shell; may use ${PORT}, ${ADDRESS}, ${COLOR}, ${RELEASE}. */
  command: readonly string[];
  /** Extra environment (same substitutions in the values). */
  env: Readonly<Record<string, string>>;
  /** Account to run as; absent or empty for the agent's own user (refused when that is root, unless root apps are allowed). */
  user?: string;
  /** Variables read from run.env_file on this host (readEnvFile); `env` wins over them. Not substituted. */
  fileEnv?: Readonly<Record<string, string>>;
  /** Variables whose values are the app's secrets, already resolved; set as given, never substituted, and win over `env`. */
  secretEnv?: Readonly<Record<string, string>>;
}

/** Where and as what one instance runs. */
export interface SpecContext {
  port: number;
  /** The agent's address; the app listens on it (and gets it as HOST). */
  address: string;
  color: Color;
  release: string;
  /** Working directory: the unpacked release, or a scratch dir when the app has no artifact. */
  releaseDir: string;
}

/** Everything needed to spawn an instance, and nothing else: no I/O happened to build it. */
export interface ProcessSpec {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  uid?: number;
  gid?: number;
  /**
   * The argv /proc shows once a wrapper (nice, the cgroup shell) has exec'd the app:
   * what the instance record holds, since the spawn returns before that exec.
   * Unset: [file, ...args].
   */
  shownArgv?: string[];
}

export interface ProcessSpecOptions {
  /** The agent's environment, from which only SAFE_INHERITED_ENV is passed on; default process.env. */
  baseEnv?: Readonly<Record<string, string | undefined>>;
  /** Resolves run.user; default reads /etc/passwd. */
  lookupUser?: UserLookup;
  /** Whether an app may run as uid 0 on this host; default "refuse". */
  rootApps?: RootApps;
  /** The agent's effective uid (what an app without run.user runs as); default process.geteuid(). */
  agentUid?: number;
}

/** The agent's own environment never leaks into apps, except these. */
export const SAFE_INHERITED_ENV = ["PATH", "LANG", "TZ"] as const;
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Builds the command for one instance from the spec's run section: the env
 * file's variables, then run.env with the variables substituted in its values,
 * then the secrets as given; sets PORT, HOST, COLOR and RELEASE
 * (they win over run.env: the agent health-checks that port), and resolves
 * run.user, refusing uid 0 unless root apps are allowed. Pure apart from the
 * user lookup and the agent's uid, which are injectable.
 */
export function processSpec(run: RunSection, ctx: SpecContext, options: ProcessSpecOptions = {}): ProcessSpec {
  const vars: Record<string, string> = {
    PORT: String(ctx.port),
    ADDRESS: ctx.address,
    COLOR: ctx.color,
    RELEASE: ctx.release,
  };
  if (run.command.length === 0 || run.command[0] === "") {
    throw new ProcessError("ERR_INVALID_RUN_SPEC", "run.command is empty; give the program and its arguments, e.g. [\"node\", \"server.js\"]");
  }
  const [file, ...args] = run.command.map((arg, i) => substitute(arg, vars, `run.command[${i}]`));

  const baseEnv = options.baseEnv ?? process.env;
  const env: Record<string, string> = {};
  for (const name of SAFE_INHERITED_ENV) {
    const value = baseEnv[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;

  let ids: { uid: number; gid: number } | undefined;
  const user = resolveRunAs(run.user || undefined, { rootApps: options.rootApps ?? "refuse", lookupUser: options.lookupUser, agentUid: options.agentUid });
  if (user) {
    ids = { uid: user.uid, gid: user.gid };
    // What login(1) and systemd's User= set; many runtimes look for HOME.
    Object.assign(env, { HOME: user.home, USER: run.user, LOGNAME: run.user });
  }

  Object.assign(env, run.fileEnv);
  for (const [name, value] of Object.entries(run.env)) {
    if (!ENV_NAME.test(name)) {
      throw new ProcessError("ERR_INVALID_RUN_SPEC", `run.env has the name ${JSON.stringify(name)}; names are letters, digits and _, not starting with a digit`);
    }
    env[name] = substitute(value, vars, `run.env.${name}`);
  }
  // A secret is set as it is: substituting would change it, and an error about it would quote it.
  for (const [name, value] of Object.entries(run.secretEnv ?? {})) {
    if (!ENV_NAME.test(name)) {
      throw new ProcessError("ERR_INVALID_RUN_SPEC", `run.env has the name ${JSON.stringify(name)}; names are letters, digits and _, not starting with a digit`);
    }
    env[name] = value;
  }
  Object.assign(env, { PORT: vars.PORT, HOST: vars.ADDRESS, COLOR: vars.COLOR, RELEASE: vars.RELEASE });

  return { file: file!, args, env, cwd: ctx.releaseDir, ...ids };
}

/**
 * Replaces `${NAME}` with vars[NAME]. `$$` and a `$` not followed by `{` are
 * kept as they are (there is no shell to expand them), and `$${X}` stays
 * literal. An unknown name is an error naming it and where it was used.
 */
export function substitute(template: string, vars: Readonly<Record<string, string>>, where: string): string {
  let out = "";
  let at = 0;
  for (;;) {
    const dollar = template.indexOf("$", at);
    if (dollar === -1) return out + template.slice(at);
    out += template.slice(at, dollar);
    const next = template[dollar + 1];
    if (next === "$") {
      out += "$$";
      at = dollar + 2;
      continue;
    }
    if (next !== "{") {
      out += "$";
      at = dollar + 1;
      continue;
    }
    const close = template.indexOf("}", dollar + 2);
    if (close === -1) {
      throw new ProcessError("ERR_INVALID_RUN_SPEC", `${where} is ${JSON.stringify(template)}: "\${" has no closing "}"`);
    }
    const name = template.slice(dollar + 2, close);
    if (!Object.hasOwn(vars, name)) {
      const known = Object.keys(vars).map((v) => `\${${v}}`).join(", ");
      throw new ProcessError("ERR_UNKNOWN_VARIABLE", `${where} uses \${${name}}, which the agent does not provide; use one of ${known}`);
    }
    out += vars[name];
    at = close + 1;
  }
}
