import test from "ava";
import { createLogger } from "@cutover/log";
import { isProcessError } from "./errors.js";
import type { StopResult } from "./stop.js";
import {
  MIN_LIVE_CHECK_INTERVAL_MS,
  Supervisor,
  UNHEALTHY_AFTER_FAILURES,
  type ExitCause,
  type SupervisedProcess,
  type SupervisorOptions,
  type SupervisorPorts,
  type SupervisorState,
} from "./supervisor.js";

/** A process that exits when the test says so. */
class FakeProcess implements SupervisedProcess {
  alive = true;
  stops = 0;
  readonly #exited: Promise<ExitCause>;
  #resolve!: (cause: ExitCause) => void;
  constructor(readonly pid: number) {
    this.#exited = new Promise((resolve) => (this.#resolve = resolve));
  }
  isAlive(): boolean {
    return this.alive;
  }
  exited(): Promise<ExitCause> {
    return this.#exited;
  }
  exit(cause: ExitCause): void {
    this.alive = false;
    this.#resolve(cause);
  }
  async stop(): Promise<StopResult> {
    this.stops++;
    this.exit({ exitCode: 0 });
    return { exitCode: 0, timedOut: false, durationMs: 1 };
  }
}

interface Deferred {
  resolve(): void;
  reject(error: Error): void;
}

/** Launch, gate and probe as the test decides: each gate waits for the test, probes answer from a queue. */
class FakePorts implements SupervisorPorts {
  readonly launched: FakeProcess[] = [];
  readonly gates: Deferred[] = [];
  probes: boolean[] = [];
  failLaunch = false;
  #nextPid = 100;
  async launch(): Promise<SupervisedProcess> {
    if (this.failLaunch) throw new Error("spawn ENOENT");
    const proc = new FakeProcess(this.#nextPid++);
    this.launched.push(proc);
    return proc;
  }
  gate(_proc: SupervisedProcess, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.gates.push({ resolve, reject });
      signal.addEventListener("abort", () => reject(new Error("aborted")));
    });
  }
  async probe(): Promise<boolean> {
    return this.probes.shift() ?? true;
  }
  get last(): FakeProcess {
    const proc = this.launched.at(-1);
    if (!proc) throw new Error("nothing launched");
    return proc;
  }
}

/** Timers the test fires by hand: no test here waits for a clock. */
class FakeClock {
  now = 0;
  pending: { at: number; fn: () => void; ms: number }[] = [];
  schedule = (fn: () => void, ms: number): (() => void) => {
    const entry = { at: this.now + ms, fn, ms };
    this.pending.push(entry);
    return () => (this.pending = this.pending.filter((e) => e !== entry));
  };
  /** Runs the earliest timer; its delay. */
  async fireNext(): Promise<number> {
    const next = [...this.pending].sort((a, b) => a.at - b.at)[0];
    if (!next) throw new Error("no timer pending");
    this.pending = this.pending.filter((e) => e !== next);
    this.now = next.at;
    next.fn();
    await settle();
    return next.ms;
  }
}

/** Lets the supervisor's promise chains run (no timer involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Exact backoff: 1 s doubling to 8 s, no jitter; reset after 60 s running. */
const RESTART = { baseMs: 1000, capMs: 8000, resetAfterMs: 60_000, random: () => 1 };

function supervisor(options: Partial<SupervisorOptions> = {}) {
  const ports = new FakePorts();
  const clock = new FakeClock();
  const lines: string[] = [];
  const log = createLogger("test", { write: (line) => lines.push(line) });
  const s = new Supervisor({ app: "geoip", color: "blue", release: "v1", ports, liveCheck: { intervalMs: 100, healthyThreshold: 2 }, restart: RESTART, now: () => clock.now, schedule: clock.schedule, log, ...options });
  const states: SupervisorState[] = [];
  s.on("transition", ({ to }) => states.push(to));
  return { s, ports, clock, states, lines };
}

async function healthy(t: ReturnType<typeof supervisor>): Promise<void> {
  const { healthy } = await t.s.start();
  t.ports.gates.at(-1)?.resolve();
  await healthy;
}

const STOP = { signal: "SIGTERM" as const, timeoutMs: 1000 };

test("start → healthy → draining → stopping → stopped; start resolves once spawned, with the gate as `healthy`", async (t) => {
  const f = supervisor();
  const { pid, healthy } = await f.s.start();
  t.is(pid, 100);
  t.is(f.s.state, "starting");
  f.ports.gates[0]?.resolve();
  await healthy;
  t.is(f.s.state, "healthy");
  f.s.drain();
  t.like(await f.s.stop(STOP), { exitCode: 0, timedOut: false });
  t.deepEqual(f.states, ["starting", "healthy", "draining", "stopping", "stopped"]);
  t.is(f.s.pid, undefined);
});

test("a call in the wrong state is refused with ERR_INSTANCE_STATE naming the state", async (t) => {
  const f = supervisor();
  const serve = t.throws(() => f.s.serve());
  t.true(isProcessError(serve, "ERR_INSTANCE_STATE"));
  t.is(serve.message, "cannot serve geoip blue while it is stopped");
  await healthy(f);
  const again = await t.throwsAsync(f.s.start());
  t.is(again.message, "cannot start geoip blue while it is healthy; stop it first");
  await f.s.stop(STOP);
  t.like(await f.s.stop(STOP), { timedOut: false, durationMs: 0 }, "stop is idempotent");
});

test("a crash in service is restarted after 1, 2, 4, 8, 8 s; the backoff starts over after a minute running", async (t) => {
  const f = supervisor();
  await healthy(f);
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    f.ports.last.exit({ signal: "SIGKILL" });
    await settle();
    t.is(f.s.state, "crashed");
    t.is(f.s.pid, undefined, "a crashed color reports no pid");
    delays.push(await f.clock.fireNext());
    t.is(f.s.state, "starting");
    f.ports.gates.at(-1)?.resolve();
    await settle();
    t.is(f.s.state, "healthy");
  }
  t.deepEqual(delays, [1000, 2000, 4000, 8000, 8000]);
  t.is(f.ports.launched.length, 6);
  f.clock.now += 60_000;
  f.ports.last.exit({ exitCode: 1 });
  await settle();
  t.is(await f.clock.fireNext(), 1000);
  t.true(f.lines.some((l) => l.includes("the live instance exited; restarting it") && l.includes('cause="signal SIGKILL"')));
  t.true(f.lines.some((l) => l.includes('cause="exit code 1"')));
});

test("a restarted color is announced once it passes its gate again", async (t) => {
  const f = supervisor();
  await healthy(f);
  const restarted: number[] = [];
  f.s.on("restarted", ({ pid }) => restarted.push(pid));
  f.ports.last.exit({ reason: "memory limit exceeded (limit 64 MiB)" });
  await settle();
  await f.clock.fireNext();
  t.deepEqual(restarted, []);
  f.ports.gates.at(-1)?.resolve();
  await settle();
  t.deepEqual(restarted, [101]);
  t.true(f.lines.some((l) => l.includes('cause="memory limit exceeded (limit 64 MiB)"')));
});

test("no restart for a crash out of service: while draining, or before the first gate passed", async (t) => {
  const draining = supervisor();
  await healthy(draining);
  draining.s.drain();
  draining.ports.last.exit({ signal: "SIGKILL" });
  await settle();
  t.is(draining.s.state, "crashed");
  t.deepEqual(draining.clock.pending, []);

  const early = supervisor();
  const { healthy: gate } = await early.s.start();
  early.ports.last.exit({ exitCode: 1 });
  early.ports.gates[0]?.reject(new Error("exited early"));
  const error = await t.throwsAsync(gate);
  t.is(error.message, "exited early", "the gate's own error reaches the caller");
  t.is(early.s.state, "crashed");
  t.deepEqual(early.clock.pending, []);
  t.deepEqual(early.states, ["starting", "crashed"]);
});

test("a spawn that fails leaves the color crashed; in service it is tried again with backoff", async (t) => {
  const f = supervisor();
  await healthy(f);
  f.ports.failLaunch = true;
  f.ports.last.exit({ signal: "SIGKILL" });
  await settle();
  t.is(await f.clock.fireNext(), 1000);
  t.is(f.s.state, "crashed");
  t.is(await f.clock.fireNext(), 2000, "the failed spawn counts as an attempt");
  f.ports.failLaunch = false;
  t.is(f.s.state, "crashed");
  await f.clock.fireNext();
  f.ports.gates.at(-1)?.resolve();
  await settle();
  t.is(f.s.state, "healthy");
});

test(`health comes from the live checks: ${UNHEALTHY_AFTER_FAILURES} failures in a row make it unhealthy, healthyThreshold passes healthy again`, async (t) => {
  const f = supervisor();
  await healthy(f);
  f.ports.probes = [false, false, true, false, false, false, true, true];
  const intervals: number[] = [];
  for (let i = 0; i < 5; i++) intervals.push(await f.clock.fireNext());
  t.is(f.s.state, "healthy", "two failures, a pass, two failures: still healthy");
  await f.clock.fireNext();
  t.is(f.s.state, "unhealthy");
  await f.clock.fireNext();
  t.is(f.s.state, "unhealthy", "one pass of the two needed");
  await f.clock.fireNext();
  t.is(f.s.state, "healthy");
  t.deepEqual(new Set(intervals), new Set([MIN_LIVE_CHECK_INTERVAL_MS]), "a 100 ms live interval (the spec refuses one) is raised to the live-check floor");
  t.deepEqual(f.states, ["starting", "healthy", "unhealthy", "healthy"]);
});

test("live checks run at liveCheck.intervalMs (the spec's live_interval, 5 s by default), after the gate and after each check", async (t) => {
  const f = supervisor({ liveCheck: { intervalMs: 5000, healthyThreshold: 2 } });
  await healthy(f);
  f.ports.probes = [true, false, false, false];
  const intervals: number[] = [];
  for (let i = 0; i < 4; i++) intervals.push(await f.clock.fireNext());
  t.deepEqual(intervals, [5000, 5000, 5000, 5000]);
  t.is(f.s.state, "unhealthy", `${UNHEALTHY_AFTER_FAILURES} failures in a row: about 15 s at the default`);
});

test("an unhealthy color is not restarted while its process runs; a gate that runs out on start leaves it unhealthy for the caller", async (t) => {
  const f = supervisor();
  const { healthy: gate } = await f.s.start();
  f.ports.gates[0]?.reject(new Error("health gate deadline"));
  await t.throwsAsync(gate, { message: "health gate deadline" });
  t.is(f.s.state, "unhealthy");
  t.deepEqual(f.clock.pending, [], "not in service: no live checks, no restart");
  await f.s.stop(STOP);
  t.is(f.ports.launched[0]?.stops, 1);
});

test("no live checks while draining; serve() puts a warm color back in service", async (t) => {
  const f = supervisor();
  await healthy(f);
  f.s.drain();
  t.deepEqual(f.clock.pending, []);
  t.true(await f.s.probe(), "a rollback checks the warm color once");
  f.s.serve();
  t.is(f.s.state, "healthy");
  t.is(f.clock.pending.length, 1, "live checks again");
  f.ports.last.exit({ signal: "SIGKILL" });
  await settle();
  t.is(f.clock.pending.length, 1, "and its crash is restarted");
  t.is(await f.clock.fireNext(), 1000);
});

test("adopt(): in service it is gated and then restarted on a crash; out of service it is draining", async (t) => {
  const live = supervisor();
  const gate = live.s.adopt(new FakeProcess(7), { inService: true });
  t.is(live.s.state, "starting");
  t.is(live.s.pid, 7);
  live.ports.gates[0]?.resolve();
  await gate;
  t.is(live.s.state, "healthy");

  const warm = supervisor();
  const proc = new FakeProcess(8);
  await warm.s.adopt(proc, { inService: false });
  t.deepEqual(warm.states, ["draining"]);
  proc.exit({});
  await settle();
  t.is(warm.s.state, "crashed");
  t.deepEqual(warm.clock.pending, [], "a warm color that dies is not restarted");
});

test("stop() cancels a pending restart and stops a restart's process mid-gate", async (t) => {
  const f = supervisor();
  await healthy(f);
  f.ports.last.exit({ signal: "SIGKILL" });
  await settle();
  t.is(f.clock.pending.length, 1);
  await f.s.stop(STOP);
  t.deepEqual(f.clock.pending, []);
  t.is(f.s.state, "stopped");

  const g = supervisor();
  await healthy(g);
  g.ports.last.exit({ signal: "SIGKILL" });
  await settle();
  await g.clock.fireNext();
  t.is(g.s.state, "starting");
  await g.s.stop(STOP);
  t.is(g.ports.last.stops, 1);
  t.deepEqual(g.states.slice(-3), ["starting", "stopping", "stopped"]);
  t.deepEqual(g.clock.pending, []);
});

test("every transition is logged once with from and to", async (t) => {
  const f = supervisor();
  await healthy(f);
  await f.s.stop(STOP);
  t.deepEqual(
    f.lines.filter((l) => l.includes("instance ")).map((l) => /from=(\w+) to=(\w+)/.exec(l)?.slice(1).join(">")),
    ["stopped>starting", "starting>healthy", "healthy>stopping", "stopping>stopped"],
  );
});
