import { writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { ProbeConnection } from "./confirm.js";
import type { ConfigChangeError } from "./errors.js";
import { exclusive } from "./queue.js";
import type { Handover, NginxRunner } from "./runner.js";
import {
  discardCandidate,
  pendingPath,
  promoteCandidate,
  removeNow,
  restoreFile,
  SITE_FILE_MODE,
  syncCandidate,
  writeCandidate,
} from "./site-files.js";
import { TimedTransaction, type Transition } from "./timed-transaction.js";

/*
 * The nginx change runner: one change of a site (an app site's switch, an LB site's apply)
 * is one transaction, plan → test → apply → confirm → restore. Every step goes through
 * TimedTransaction.transition() with this table. <set> is the state in which the shared
 * dict is written: "setting-port" for an app site, "setting-state" for an LB site.
 *
 *  reload:    planned ─▶ testing ─▶ activating ─▶ reloading ─▶ retiring ─▶ [<set>] ─▶ confirming ─▶ done
 *  live:      planned ─▶ <set> ─▶ [persisting] ─▶ [confirming] ─▶ done
 *                          ├──▶ testing ─▶ …      (no control socket: the live file was never
 *                          └──▶ reloading ─▶ …     loaded; reload, testing only what changes)
 *  unchanged: planned ─▶ verifying ─▶ done       (the files are as wanted and serving)
 *                             └──▶ reloading ─▶ …  (written but never loaded)
 *
 *  planned/testing ─▶ failed: invalid, or nginx -t said no; nothing live was touched.
 *  every later step ─▶ rolling-back ─▶ failed: each step's change is put back (rollBack).
 *
 *  retiring: nginx keeps the replaced workers accepting for 100 ms after a reload; only once
 *  they stop does every new connection get the new config. [<set>] after a reload: the dict
 *  outlives reloads, so until it is set the new workers route by what served until now.
 *  live, [confirming]: skipped when the dict's write proved the change itself (LiveSet.confirmed).
 *  live, the fallback file: persist "with-confirm" writes it in persisting, overlapping the
 *  confirmation, and both must succeed; "after-done" writes it once the change is confirmed
 *  and resolved (see LiveChange.persist).
 */
export type ChangeState<Set extends string> =
  | "planned"
  | "verifying"
  | "testing"
  | "activating"
  | "reloading"
  | "retiring"
  | Set
  | "persisting"
  | "confirming"
  | "rolling-back"
  | "done"
  | "failed";

function transitionTable<Set extends string>(set: Set): Record<ChangeState<Set>, readonly ChangeState<Set>[]> {
  const table: Record<string, readonly string[]> = {
    planned: ["testing", set, "verifying", "failed"],
    verifying: ["done", "reloading"],
    testing: ["activating", "failed"],
    activating: ["reloading", "rolling-back"],
    reloading: ["retiring", "rolling-back"],
    retiring: [set, "confirming", "rolling-back"],
    [set]: ["persisting", "confirming", "done", "testing", "reloading", "rolling-back"],
    persisting: ["confirming", "done", "rolling-back"],
    confirming: ["done", "rolling-back"],
    "rolling-back": ["failed"],
    done: [],
    failed: [],
  };
  return table as Record<ChangeState<Set>, readonly ChangeState<Set>[]>;
}

/** What a caller of a site change may set: how it is confirmed, and what it reports. */
export interface ChangeOptions<Set extends string> {
  /** Path requested through the proxy (or LB) to confirm, e.g. the app's health path. Default "/". */
  confirmPath?: string;
  confirmTimeoutMs?: number;
  /** Status the confirming request must get; default: anything below 500. */
  expectStatus?: number;
  /**
   * Take the reload path even when a live change or nothing would do: for reconciling
   * after an agent restart, when a file may have been written but never loaded.
   */
  forceReload?: boolean;
  /** Called once per state change, e.g. to log `{from, to}` or stream an Event. */
  onTransition?: (transition: Transition<ChangeState<Set>>) => void;
}

/** The probe options a confirmation passes on: path, deadline, expected status. */
export function probeOptions(
  options: Pick<ChangeOptions<never>, "confirmPath" | "expectStatus">,
  timeoutMs: number,
): { path: string; timeoutMs: number; expectStatus?: number } {
  return {
    path: options.confirmPath ?? "/",
    timeoutMs,
    ...(options.expectStatus !== undefined ? { expectStatus: options.expectStatus } : {}),
  };
}

/** One file the change writes (or removes: `next` null), with the content to put back. */
export interface FileChange {
  path: string;
  next: string | null;
  previous: string | null;
}

/** Puts back what one step changed. */
export type Undo = () => Promise<void>;

/** What writing the dict did: how to put it back, and whether the write proved itself. */
export interface LiveSet {
  undo: Undo;
  /**
   * The same call already proved the change through the proxy (an app site's PUT with its
   * probe, control.ts switchLivePort): no confirming step. False: Plan.confirm proves it.
   */
  confirmed: boolean;
}

/** A change the shared dict alone makes live, without a reload. */
export interface LiveChange {
  /**
   * Writes the dict; resolves with how to put it back, or null when the site's control
   * endpoint is not there (its file was never loaded): the change reloads instead.
   */
  set(): Promise<LiveSet | null>;
  /** The file an nginx restart (empty dict) reads; null when it is already as wanted. */
  fallback: FileChange | null;
  /**
   * "with-confirm": written in persisting, overlapping the confirmation; the change is
   * done when both are. "after-done": the change resolves once the dict is set and
   * confirmed; the file is written after it, before the next change on this nginx starts
   * (ChangeOutcome.persisted). Until then a copy of it waits beside the site
   * (site-files.ts, pendingPath), written before the dict is set: a restarted agent that
   * finds the dict on that copy's port finishes the write (live-port.ts, settleFallback).
   */
  persist: "with-confirm" | "after-done";
}

/** What the caller decided the change is; the runner carries it out. */
export interface Plan {
  app: string;
  /** "live": the dict; "verify": nothing changed, probe first; "reload": test, activate, reload. */
  route: "live" | "verify" | "reload";
  /** The files that differ from what is written, tested together and put in place on reload. */
  files: readonly FileChange[];
  /** For route "live". */
  live: LiveChange | null;
  /** After a reload: makes the dict agree with the new config; resolves with its undo. */
  setAfterReload: (() => Promise<Undo>) | null;
  /** Just before the reload, e.g. the directory a new control socket binds in. */
  prepareReload?: () => void;
  /** Told of every handover of this change (null: it loaded nothing new). */
  onLoaded?: (handover: Handover | null) => void;
  /**
   * Proves the change through the proxy; rejects with the reason it does not serve. The
   * live route asks for a "kept" connection (no worker changed); every other, "fresh".
   */
  confirm(timeoutMs?: number, connection?: ProbeConnection): Promise<unknown>;
  /** The error for an `nginx -t` that rejected the candidates. */
  testFailed(output: string): Error;
}

/** What kind of site a change is for: its dict state's name and its error type. */
export interface ChangeKind<Set extends string> {
  /** Names the change in a bad-transition error: "switch", "LB change". */
  what: string;
  setStep: Set;
  asError(error: unknown): ConfigChangeError<string>;
}

/** What every site change reports. */
export interface ChangeResult<Set extends string> {
  app: string;
  mode: "reload" | "live";
  /** The master reloaded: reload mode, or live mode's first change / a structure change. */
  reloaded: boolean;
  /** Wall time of the change, confirmation included (performance.now()). */
  durationMs: number;
  /**
   * Part of durationMs spent waiting for nginx to retire the replaced workers (its fixed
   * 100 ms pause after a reload); 0 without a reload. durationMs - handoverMs is the agent's work.
   */
  handoverMs: number;
  /** Milliseconds spent in each state: where the budget went. */
  steps: Partial<Record<ChangeState<Set>, number>>;
}

export interface ChangeOutcome<Set extends string> extends Omit<ChangeResult<Set>, "app" | "mode"> {
  /**
   * Settles (never rejects) once the live fallback file is durable: null, or the error that
   * kept it from being written (the dict serves; the copy beside the site is kept for
   * settleFallback, and the next switch writes the file again). Null at once otherwise.
   */
  persisted: Promise<Error | null>;
}

const NOTHING_PENDING: Promise<Error | null> = Promise.resolve(null);

/**
 * Runs one change after every change queued before it on the same nginx. `plan` runs
 * inside the transaction: what it throws fails it from planned. Any later failure puts
 * back what was changed before throwing `kind`'s error (with `rolledBack`).
 */
export function runChange<Set extends string>(
  runner: NginxRunner,
  kind: ChangeKind<Set>,
  app: string,
  plan: () => Plan,
  options: ChangeOptions<Set>,
): Promise<ChangeOutcome<Set>> {
  return exclusive(
    runner,
    () => {
      const tx = new TimedTransaction(kind.what, app, transitionTable(kind.setStep), "planned", performance.now(), options.onTransition);
      let change: NginxChange<Set>;
      try {
        change = new NginxChange(runner, kind, tx, plan());
      } catch (error) {
        tx.transition("failed");
        throw kind.asError(error);
      }
      return change.run();
    },
    (outcome) => outcome.persisted,
  );
}

class NginxChange<Set extends string> {
  /** What each step changed, in order; rollBack puts it back last first. */
  private readonly undos: Undo[] = [];
  /** Files were put in place and a reload sent: putting them back needs a reload too. */
  private reloadBack = false;

  constructor(
    private readonly runner: NginxRunner,
    private readonly kind: ChangeKind<Set>,
    private readonly tx: TimedTransaction<ChangeState<Set>>,
    private readonly plan: Plan,
  ) {}

  run(): Promise<ChangeOutcome<Set>> {
    switch (this.plan.route) {
      case "live":
        return this.live();
      case "verify":
        return this.verify();
      case "reload":
        return this.reload(true);
    }
  }

  private outcome(reloaded: boolean, persisted = NOTHING_PENDING): ChangeOutcome<Set> {
    return { reloaded, durationMs: this.tx.elapsed(), handoverMs: this.tx.steps.retiring ?? 0, steps: this.tx.steps, persisted };
  }

  /** Already written: one probe tells whether it is also loaded. */
  private async verify(): Promise<ChangeOutcome<Set>> {
    this.tx.transition("verifying");
    const loaded = await this.plan.confirm(0).then(
      () => true,
      () => false,
    );
    if (!loaded) return this.reload(false);
    this.tx.transition("done");
    this.plan.onLoaded?.(null);
    return this.outcome(false);
  }

  /**
   * No reload: the dict moves every worker's next request; the fallback file keeps it across
   * an nginx restart. That file differs from the tested one only in the dict's value (the
   * caller checks by re-rendering), so it is not re-tested: `nginx -t` alone would cost
   * several times the live budget.
   */
  private async live(): Promise<ChangeOutcome<Set>> {
    const { live } = this.plan;
    if (live === null) throw new Error(`${this.kind.what} of ${this.plan.app}: a live route needs a live change`);
    const deferred = live.persist === "after-done" && live.fallback?.next != null ? live.fallback : null;
    this.tx.transition(this.kind.setStep);
    let written: LiveSet | null;
    try {
      if (deferred !== null) {
        // A few hundred bytes into the page cache, no fsync: a synchronous write takes
        // microseconds, where the pool's open/write/close round trips took milliseconds
        // under load, inside the live budget.
        const pending = pendingPath(deferred.path);
        writeFileSync(pending, deferred.next ?? "", { mode: SITE_FILE_MODE });
        this.undos.push(() => rm(pending, { force: true }));
      }
      written = await live.set();
    } catch (error) {
      return this.rollBack(error);
    }
    if (written === null) {
      for (const pendingUndo of this.undos.splice(0)) await pendingUndo();
      return this.reload(this.plan.files.length > 0);
    }
    this.undos.push(written.undo);
    try {
      // A set that proved itself needs no confirming step; "with-confirm" still writes its file.
      const confirm = () => (written.confirmed ? undefined : this.plan.confirm(undefined, "kept"));
      if (live.persist === "with-confirm") {
        this.tx.transition("persisting");
        const persisted = live.fallback === null ? Promise.resolve() : this.activate(live.fallback, "write");
        if (!written.confirmed) this.tx.transition("confirming");
        await Promise.all([persisted, confirm()]);
      } else if (!written.confirmed) {
        this.tx.transition("confirming");
        await confirm();
      }
      this.tx.transition("done");
    } catch (error) {
      return this.rollBack(error);
    }
    this.plan.onLoaded?.(null);
    return this.outcome(false, deferred === null ? NOTHING_PENDING : persistFallback(deferred));
  }

  /**
   * nginx -t with the candidates in place → rename → reload → (set the dict) → confirm. The
   * renames are made durable while nginx reloads (it reads them from the page cache); the
   * change is done only once they are.
   */
  private async reload(test: boolean): Promise<ChangeOutcome<Set>> {
    const { runner, plan, tx } = this;
    if (test) {
      await this.test();
      tx.transition("activating");
    }
    try {
      const durable = Promise.all(plan.files.map((file) => this.activate(file, "promote")));
      durable.catch(() => undefined); // awaited before done; a failure meanwhile is not unhandled
      plan.prepareReload?.();
      tx.transition("reloading");
      this.reloadBack = plan.files.length > 0;
      const handover = await runner.reload();
      tx.transition("retiring");
      await runner.retired(handover);
      plan.onLoaded?.(handover);
      // Only now: until the old workers retire they read the dict too, with their old config.
      if (plan.setAfterReload !== null) {
        tx.transition(this.kind.setStep);
        this.undos.push(await plan.setAfterReload());
      }
      tx.transition("confirming");
      await Promise.all([plan.confirm(), durable]);
      tx.transition("done");
    } catch (error) {
      return this.rollBack(error);
    }
    return this.outcome(true);
  }

  /**
   * testing: every candidate beside its file, one `nginx -t` over all, while the candidates
   * are synced (they must be durable before a rename makes them live); a refusal touches
   * nothing live.
   */
  private async test(): Promise<void> {
    const { files } = this.plan;
    this.tx.transition("testing");
    try {
      const candidates = new Map<string, string | null>();
      for (const file of files) candidates.set(file.path, file.next === null ? null : writeCandidate(file.path, file.next));
      const synced = Promise.all(files.filter((file) => file.next !== null).map((file) => syncCandidate(file.path)));
      const [verdict] = await Promise.all([this.runner.test(candidates), synced]);
      if (!verdict.ok) throw this.plan.testFailed(verdict.output);
    } catch (error) {
      for (const file of files) await discardCandidate(file.path);
      this.tx.transition("failed");
      throw this.kind.asError(error);
    }
  }

  /**
   * Puts one file in place now (the tested candidate, a removal, or a fresh write) and records
   * how to put it back. A rename or removal that fails throws at once; the promise settles
   * once the change is durable.
   */
  private activate(file: FileChange, how: "promote" | "write"): Promise<void> {
    const done = file.next === null ? removeNow(file.path) : how === "promote" ? promoteCandidate(file.path) : restoreFile(file.path, file.next);
    // Never restore under a write still in flight.
    this.undos.push(() => done.catch(() => undefined).then(() => restoreFile(file.path, file.previous)));
    return done;
  }

  /** The one failure path after planning: every undo, last first, then a reload if files moved. */
  private async rollBack(error: unknown): Promise<never> {
    this.tx.transition("rolling-back");
    const failure = this.kind.asError(error);
    try {
      for (const undo of this.undos.reverse()) await undo();
      if (this.reloadBack) {
        const handover = await this.runner.reload({ failFast: false });
        await this.runner.retired(handover);
        this.plan.onLoaded?.(handover);
      }
      failure.rolledBack = true;
    } catch (rollbackError) {
      failure.rollbackError = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    this.tx.transition("failed");
    throw failure;
  }
}

/** The deferred fallback write: the file, then its pending copy goes. */
async function persistFallback(file: FileChange): Promise<Error | null> {
  try {
    await restoreFile(file.path, file.next);
    await rm(pendingPath(file.path), { force: true });
    return null;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}
