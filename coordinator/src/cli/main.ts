import { Command, CommanderError } from "commander";
import { VERSION } from "../version.js";
import { registerAgents } from "./commands/agents.js";
import { registerHosts } from "./commands/hosts.js";
import { registerServer } from "./commands/server.js";
import { registerToken } from "./commands/token.js";
import { registerDeploy } from "./commands/deploy.js";
import { registerStatus } from "./commands/status.js";
import { registerRollback } from "./commands/rollback.js";
import { registerReleases } from "./commands/releases.js";
import { registerHistory } from "./commands/history.js";
import { registerCheck } from "./commands/check.js";
import { registerControls } from "./commands/control.js";
import { registerAudit } from "./commands/audit.js";
import { registerLock } from "./commands/lock.js";
import { registerSecret } from "./commands/secret.js";
import { registerLogs } from "./commands/logs.js";
import { registerApps } from "./commands/apps.js";
import { registerInit } from "./commands/init.js";
import { registerValidate } from "./commands/validate.js";
import { registerCompletion } from "./commands/completion.js";
import { registerUi } from "./commands/ui.js";
import { EXIT, ExitError } from "./exit-error.js";
import { printable } from "./terminal-text.js";

export function buildProgram(): Command {
  const program = new Command("cutover")
    .description("zero-downtime deploys for on-premise fleets")
    .version(VERSION)
    .option("--url <url>", "coordinator URL (default: $CUTOVER_URL, config file, http://127.0.0.1:7400)")
    .option("--token <token>", "API token (default: $CUTOVER_TOKEN or the config file)")
    .option("--config <file>", "CLI config file with url, token and fingerprint (default: ~/.config/cutover/cli.yaml)")
    .option("--fingerprint <sha256>", "pin the coordinator's TLS certificate (default: $CUTOVER_FINGERPRINT or the config file); https only")
    .option("--allow-plain", "send the API token over plain http to a coordinator not on loopback (default: $CUTOVER_ALLOW_PLAIN=1 or `allow_plain: true`)")
    .exitOverride()
    .showHelpAfterError();
  registerServer(program);
  registerHosts(program);
  registerAgents(program);
  registerToken(program);
  registerDeploy(program);
  registerStatus(program);
  registerRollback(program);
  registerReleases(program);
  registerHistory(program);
  registerCheck(program);
  registerControls(program);
  registerAudit(program);
  registerLock(program);
  registerSecret(program);
  registerLogs(program);
  registerApps(program);
  registerInit(program);
  registerValidate(program);
  registerUi(program);
  registerCompletion(program);
  return program;
}

/** The error code a `--json` caller reads when the coordinator gave none: what kind of failure it was. */
const LOCAL_ERROR_CODES: Record<number, string> = {
  [EXIT.failed]: "ERR_FAILED",
  [EXIT.changes]: "ERR_PLAN_CHANGES",
  [EXIT.usage]: "ERR_USAGE",
  [EXIT.refused]: "ERR_REFUSED",
  [EXIT.unreachable]: "ERR_UNREACHABLE",
  [EXIT.internal]: "ERR_INTERNAL",
  [EXIT.tryLater]: "ERR_TRY_LATER",
  [EXIT.denied]: "ERR_DENIED",
};

/**
 * One failure on stderr: a line for people, or with `--json` one object
 * `{"error":{"code","message"}}` (the coordinator's code when it refused the call).
 */
function reportFailure(argv: string[], message: string, exitCode: number, apiCode?: string): void {
  if (argv.includes("--json")) {
    process.stderr.write(`${JSON.stringify({ error: { code: apiCode ?? LOCAL_ERROR_CODES[exitCode] ?? "ERR_FAILED", message } })}\n`);
  } else {
    // The message may relay what a host said (a deploy's error): printable, line by line.
    process.stderr.write(`cutover: ${message.split("\n").map(printable).join("\n")}\n`);
  }
  process.exitCode = exitCode;
}

/** Stops commander printing a usage error (and the help after it) on stderr, for `command` and every verb below it. */
function silenceUsageErrors(command: Command): void {
  command.configureOutput({ outputError: () => {}, writeErr: () => {} });
  for (const verb of command.commands) silenceUsageErrors(verb);
}

/** The CLI entry point: the only place that turns errors into exit codes (exit-error.ts, EXIT). */
export async function main(argv: string[]): Promise<void> {
  try {
    const program = buildProgram();
    // With --json a usage error is reported below as the one JSON object, not as commander's text and help.
    if (argv.includes("--json")) silenceUsageErrors(program);
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version exit 0; commander has already printed what was wrong with the command line (unless --json).
      if (error.exitCode !== 0 && argv.includes("--json")) return reportFailure(argv, error.message.replace(/^error: /, ""), EXIT.usage);
      process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
      return;
    }
    if (error instanceof ExitError) return reportFailure(argv, error.message, error.exitCode, error.apiCode);
    reportFailure(argv, `unexpected error: ${(error as Error).stack ?? String(error)}`, EXIT.internal);
  }
}
