import type { Color } from "./app-state.js";
import type { AppDefinition } from "./definition.js";

/*
 * The local transaction (docs/architecture.md, "The local transaction"): one
 * app on one host, from a Deploy or Rollback to done. Its plans, drawn once:
 *
 *   blue-green   preflight ─▶ fetch ─▶ start ─▶ health ─▶ switch ─▶ drain ─▶ done    deploy, cold rollback
 *   in-place     preflight ─▶ fetch ─▶ start ─▶ health ─────────────────────▶ done    rolling (host out of the LB)
 *   warm-switch                                          switch ─▶ drain ─▶ done    rollback onto the warm color
 *
 *   any step ─▶ failed          one failure path (AppManager.fail): undo what the steps so far
 *                               changed; what was live keeps serving.
 *   any step ─▶ agent restart   recovery: at drain, or at switch with the proxy on the new color
 *                               and it healthy ─▶ done; otherwise ─▶ failed (ERR_AGENT_RESTARTED).
 *
 * Before a step runs, its name is saved in the app's snapshot, so a restarted
 * agent knows how far the transaction got.
 */

export type TransactionStep = "preflight" | "fetch" | "start" | "health" | "switch" | "drain";
export type TransactionPlan = "blue-green" | "in-place" | "warm-switch";

const PLANS: { readonly [P in TransactionPlan]: readonly TransactionStep[] } = {
  "blue-green": ["preflight", "fetch", "start", "health", "switch", "drain"],
  "in-place": ["preflight", "fetch", "start", "health"],
  "warm-switch": ["switch", "drain"],
};

/** The steps of a plan, in order. */
export function stepsOf(plan: TransactionPlan): readonly TransactionStep[] {
  return PLANS[plan];
}

/** What a Deploy or Rollback is doing right now; saved before each step so a restarted agent can finish or revert it. */
export interface Transaction {
  commandId: string;
  kind: "deploy" | "rollback";
  plan: TransactionPlan;
  step: TransactionStep;
  /** The color being brought up (in place: the live color, whose release is replaced). */
  color: Color;
  release: string;
  /** Artifact of the release, when it has one. */
  sha256?: string;
  /** The definition the release is deployed with. */
  definition: AppDefinition;
  startedAt: number;
}

/** A snapshot saved by an agent older than plans: a deploy on the live color was in place. */
export function planOf(transaction: Pick<Transaction, "color"> & { plan?: TransactionPlan }, liveColor: Color | undefined): TransactionPlan {
  if (transaction.plan) return transaction.plan;
  return transaction.color === liveColor ? "in-place" : "blue-green";
}

/** Where the transaction writes down how far it got, and tells the coordinator. */
export interface TransactionJournal {
  /** Saves the app's snapshot holding `transaction` (null once it ended); resolves once durable. */
  save(transaction: Transaction | null): Promise<void>;
  /** A progress event for the command, and a line in the agent log. */
  progress(step: TransactionStep | "done", message: string, color: Color): void;
}

/** Where a crash can be injected: right after a step is saved, and right after nginx switched (before that is saved). */
export type FaultPoint = TransactionStep | "switched";
/** Called at every fault point. The e2e suite's is CUTOVER_FAULT_KILL_AT (the agent SIGKILLs itself); unit tests stop there for good. */
export type FaultHook = (point: FaultPoint) => void | Promise<void>;

/** CUTOVER_FAULT_KILL_AT=<point>: the agent SIGKILLs itself there, as a crash would. Unset in production; read once. */
export function envFaultHook(env: NodeJS.ProcessEnv = process.env): FaultHook {
  const killAt = env.CUTOVER_FAULT_KILL_AT;
  return (point) => {
    if (point === killAt) process.kill(process.pid, "SIGKILL");
  };
}

/** One run of a plan: `advance` is the only way from step to step. */
export class LocalTransaction {
  #step: TransactionStep | null = null;
  /** Milliseconds from start to passing the health gate, once it passed. */
  bootMs = 0;

  constructor(
    readonly record: Omit<Transaction, "step">,
    private readonly journal: TransactionJournal,
    private readonly fault: FaultHook,
  ) {}

  /** The step reached; null before the first. */
  get step(): TransactionStep | null {
    return this.#step;
  }

  /** True once the plan got to `step` (or past it); false for a step the plan does not have. */
  reached(step: TransactionStep): boolean {
    const steps = stepsOf(this.record.plan);
    return this.#step !== null && steps.includes(step) && steps.indexOf(this.#step) >= steps.indexOf(step);
  }

  /**
   * Moves to the plan's next step, which must be `step`: saves the snapshot
   * at it, streams `message` and passes the fault point.
   */
  async advance(step: TransactionStep, message?: string): Promise<void> {
    const steps = stepsOf(this.record.plan);
    const expected = steps[this.#step === null ? 0 : steps.indexOf(this.#step) + 1];
    if (step !== expected) throw new Error(`transaction ${this.record.commandId} (${this.record.plan}): ${step} after ${this.#step ?? "the start"}, expected ${expected ?? "the end"}`);
    this.#step = step;
    await this.journal.save({ ...this.record, step });
    if (message) this.progress(message);
    await this.fault(step);
  }

  /** Passes a fault point inside a step ("switched"). */
  async at(point: FaultPoint): Promise<void> {
    await this.fault(point);
  }

  /** A progress event at the current step. */
  progress(message: string, color: Color = this.record.color): void {
    this.journal.progress(this.#step ?? stepsOf(this.record.plan)[0]!, message, color);
  }

  /** The transaction is over: the snapshot no longer holds it; `message` (when done) says what is live. */
  async end(message?: string): Promise<void> {
    await this.journal.save(null);
    if (message) this.journal.progress("done", message, this.record.color);
  }
}
