import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import type { LockView } from "../../api/locks.js";
import { ApiClient } from "../client.js";
import { resolveClientSettings, type GlobalOptions } from "../config.js";
import { EXIT, ExitError } from "../exit-error.js";
import { renderTable } from "../table.js";
import { printable } from "../terminal-text.js";

/** How often `--lock-wait` asks whether the lock is gone: a lock is held for minutes, so a second is prompt. */
export const LOCK_POLL_MS = 1000;

const lockPath = (app: string) => `/v1/apps/${encodeURIComponent(app)}/lock`;

function describe(lock: LockView): string {
  return printable(`${lock.app} is locked by ${lock.holder} since ${lock.acquiredAt}: ${lock.reason}`);
}

export function renderLocks(locks: LockView[]): string {
  if (locks.length === 0) return "no app is locked";
  return renderTable(
    ["APP", "HOLDER", "SINCE", "REASON"],
    locks.map((l) => [l.app, l.holder, l.acquiredAt, l.reason]),
  );
}

/** True when the coordinator refused the call because the app is locked. */
export function isLockRefusal(error: unknown): error is ExitError {
  return error instanceof ExitError && error.apiCode === "ERR_APP_LOCKED";
}

/**
 * Waits until `app` is unlocked, asking every LOCK_POLL_MS; throws once `deadline`
 * (Date.now() ms) passes with the lock still held, naming it.
 */
export async function waitForUnlock(client: ApiClient, app: string, deadline: number): Promise<void> {
  for (;;) {
    const lock = await client.get<LockView | null>(lockPath(app));
    if (lock === null) return;
    if (Date.now() >= deadline) throw new ExitError(`gave up waiting for the lock: ${describe(lock)}; nothing was deployed`, EXIT.tryLater, "ERR_APP_LOCKED");
    await sleep(Math.min(LOCK_POLL_MS, Math.max(0, deadline - Date.now())));
  }
}

export function registerLock(program: Command): void {
  const lock = program.command("lock").description("hold an app against deploys and rollbacks (a migration, an incident, a freeze), and let it go");
  const clientOf = (command: Command) => new ApiClient(resolveClientSettings(command.optsWithGlobals<GlobalOptions>()));
  lock
    .command("acquire <app>")
    .description("lock APP: deploys and rollbacks of it are refused, naming you and why, until it is released")
    .requiredOption("-m, --message <why>", "why, shown to everyone the lock refuses")
    .option("--json", "print the lock as JSON")
    .action(async (app: string, options: { message: string; json?: boolean }, command: Command) => {
      const taken = await clientOf(command).post<LockView>(lockPath(app), { reason: options.message });
      process.stdout.write(options.json ? `${JSON.stringify(taken)}\n` : `${describe(taken)}\n`);
    });
  lock
    .command("status [app]")
    .description("who holds APP's lock and why, or every lock held")
    .option("--json", "print JSON: the lock or null (with APP), else an array")
    .action(async (app: string | undefined, options: { json?: boolean }, command: Command) => {
      const client = clientOf(command);
      if (app === undefined) {
        const locks = await client.get<LockView[]>("/v1/locks");
        process.stdout.write(options.json ? `${JSON.stringify(locks)}\n` : `${renderLocks(locks)}\n`);
        return;
      }
      const held = await client.get<LockView | null>(lockPath(app));
      process.stdout.write(options.json ? `${JSON.stringify(held)}\n` : `${held ? describe(held) : printable(`${app} is not locked`)}\n`);
    });
  lock
    .command("release <app>")
    .description("unlock APP, whoever holds it (any deploy token; the audit trail keeps who and what it released)")
    .option("--json", "print the released lock as JSON")
    .action(async (app: string, options: { json?: boolean }, command: Command) => {
      const released = await clientOf(command).delete<LockView>(lockPath(app));
      process.stdout.write(options.json ? `${JSON.stringify(released)}\n` : `${printable(`${app} unlocked (it was held by ${released.holder}: ${released.reason})`)}\n`);
    });
}
