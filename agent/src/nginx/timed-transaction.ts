import { performance } from "node:perf_hooks";

/** One state change of a config transaction, for logs and Events. */
export interface Transition<S extends string> {
  app: string;
  from: S;
  to: S;
  /** Milliseconds since the change began. */
  atMs: number;
}

/**
 * A config change's state machine (switch of an app site, apply of a load-balancer
 * site): checks each transition against the table the caller draws, keeps the time
 * spent in each state (where the budget went), and reports every change once.
 */
export class TimedTransaction<S extends string> {
  private current: S;
  private enteredAt: number;
  readonly steps: Partial<Record<S, number>> = {};

  constructor(
    private readonly what: string,
    readonly app: string,
    private readonly transitions: Record<S, readonly S[]>,
    initial: S,
    readonly startedAt: number,
    private readonly onTransition?: (transition: Transition<S>) => void,
  ) {
    this.current = initial;
    this.enteredAt = startedAt;
  }

  get state(): S {
    return this.current;
  }

  transition(to: S): void {
    const from = this.current;
    if (!this.transitions[from].includes(to)) throw new Error(`${this.what} of ${this.app}: cannot go from ${from} to ${to}`);
    const now = performance.now();
    this.steps[from] = (this.steps[from] ?? 0) + (now - this.enteredAt);
    this.current = to;
    this.enteredAt = now;
    this.onTransition?.({ app: this.app, from, to, atMs: now - this.startedAt });
  }

  elapsed(): number {
    return performance.now() - this.startedAt;
  }
}
