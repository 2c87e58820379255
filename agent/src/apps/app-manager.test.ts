// The local transaction over fakes (test-fakes.ts): every plan with each of
// its steps failing, and the agent dying at each of its fault points and a
// fresh one recovering. The invariant is checked at every fault point and
// every switch: the proxy points at a process that passed its health gate.
// deploy.e2e and agent-crash.e2e run the same transaction on real processes and nginx.
import test, { type ExecutionContext } from "ava";
import { AppStateStore } from "./app-state.js";
import { appDefinitionOf } from "./definition.js";
import { codedError, FAILED, fakeAgent, FakeHost, OK, stateDirFor, type Agent } from "./test-fakes.js";
import { LocalTransaction, stepsOf, type FaultPoint, type TransactionPlan } from "./transaction.js";

const WIRE = {
  name: "geoip",
  bluePort: 7001,
  greenPort: 7002,
  proxy: { listenPort: 8080 },
  run: { command: ["node", "server.mjs"] },
  keepPreviousMs: 60_000,
};
const DEFINITION = appDefinitionOf(WIRE);
const ARTIFACT = { sha256: "ab".repeat(32) };
const deployOf = (release: string, extra: { inPlace?: boolean } = {}) => ({ app: WIRE, release, artifact: ARTIFACT, ...extra });

interface Scene {
  host: FakeHost;
  stateDir: string;
  agent: Agent;
}

/** v1 live on blue; with `v2`, v2 live on green and v1 warm on blue. */
async function scene(t: ExecutionContext, upTo: "v1" | "v2"): Promise<Scene> {
  const host = new FakeHost(DEFINITION);
  const stateDir = stateDirFor(t);
  const agent = fakeAgent(host, stateDir);
  t.like(await agent.manager.deploy("c1", deployOf("v1")), { status: OK });
  if (upTo === "v2") t.like(await agent.manager.deploy("c2", deployOf("v2")), { status: OK });
  return { host, stateDir, agent };
}

/** How each plan is started on its scene, and what serves once it is kept or reverted. */
const PLANS: Record<
  "deploy" | "in-place" | "warm rollback" | "cold rollback",
  {
    plan: TransactionPlan;
    scene: "v1" | "v2";
    /** Makes the scene's warm color go away first (keep_previous is over). */
    coldWarm?: boolean;
    run(agent: Agent): ReturnType<Agent["manager"]["deploy"]>;
    before: { running: string[]; serving: number };
    after: { running: string[]; serving: number };
  }
> = {
  deploy: {
    plan: "blue-green",
    scene: "v1",
    run: (a) => a.manager.deploy("tx", deployOf("v2")),
    before: { running: ["blue=v1"], serving: 7001 },
    after: { running: ["blue=v1", "green=v2"], serving: 7002 },
  },
  "in-place": {
    plan: "in-place",
    scene: "v1",
    run: (a) => a.manager.deploy("tx", deployOf("v2", { inPlace: true })),
    before: { running: ["blue=v1"], serving: 7001 },
    after: { running: ["blue=v2"], serving: 7001 },
  },
  "warm rollback": {
    plan: "warm-switch",
    scene: "v2",
    run: (a) => a.manager.rollback("tx", "geoip"),
    before: { running: ["blue=v1", "green=v2"], serving: 7002 },
    after: { running: ["blue=v1", "green=v2"], serving: 7001 },
  },
  "cold rollback": {
    plan: "blue-green",
    scene: "v2",
    coldWarm: true,
    run: (a) => a.manager.rollback("tx", "geoip"),
    before: { running: ["green=v2"], serving: 7002 },
    after: { running: ["blue=v1", "green=v2"], serving: 7001 },
  },
};

async function planScene(t: ExecutionContext, name: keyof typeof PLANS): Promise<Scene> {
  const s = await scene(t, PLANS[name].scene);
  if (PLANS[name].coldWarm) s.host.processes.delete("geoip/blue");
  s.host.outOfService = name === "in-place";
  return s;
}

/** The fault that makes `step` itself fail, and the code the command then answers with (drain: nothing fails the command). */
const STEP_FAULTS = {
  preflight: { kind: "resources", error: codedError("ERR_PREFLIGHT_MEMORY", "not enough memory"), code: "ERR_PREFLIGHT_MEMORY" },
  fetch: { kind: "fetch", error: codedError("ERR_ARTIFACT_FETCH", "the coordinator is gone"), code: "ERR_ARTIFACT_FETCH" },
  start: { kind: "start", error: codedError("ERR_PROCESS_SPAWN", "no such file"), code: "ERR_PROCESS_SPAWN" },
  health: { kind: "gate", error: codedError("ERR_HEALTH_DEADLINE", "no healthy answer in 60 s"), code: "ERR_HEALTH_DEADLINE" },
  switch: { kind: "switch", error: codedError("ERR_NGINX_CONFIRM_FAILED", "the proxy answered from the old port; previous config restored"), code: "ERR_NGINX_CONFIRM_FAILED" },
  drain: { kind: "persist", error: new Error("ENOSPC: the fallback file"), code: undefined },
} as const;

for (const [name, p] of Object.entries(PLANS) as [keyof typeof PLANS, (typeof PLANS)[keyof typeof PLANS]][]) {
  for (const step of stepsOf(p.plan)) {
    test(`${name}: ${step} failing ${step === "drain" ? "leaves the switch done" : "leaves what was live serving, and nothing half-done"}`, async (t) => {
      const s = await planScene(t, name);
      const fault = STEP_FAULTS[step];
      s.host.failNext.set(fault.kind, fault.error);
      const result = await p.run(s.agent);
      const kept = step === "drain";
      if (kept) t.like(result, { status: OK });
      else t.like(result, { status: FAILED, errorCode: fault.code });
      const end = kept ? p.after : p.before;
      t.deepEqual(s.host.running(), end.running);
      t.is(s.host.serving.get("geoip"), end.serving);
      t.true([...s.host.processes.values()].every((process) => process.gated), "every process left passed its gate");
      t.deepEqual(s.host.violations, []);
      t.is(s.agent.manager.snapshot("geoip")?.transaction, null);
      t.like(s.agent.manager.storedResult("tx"), { status: kept ? OK : FAILED });
      s.host.outOfService = false;
      t.like(await s.agent.manager.deploy("next", deployOf("v3")), { status: OK }, "the next deploy works");
      t.deepEqual(s.host.violations, []);
    });
  }
}

/** Every fault point of a plan: its steps, and "switched" right after a switch. */
function faultPoints(plan: TransactionPlan): FaultPoint[] {
  return stepsOf(plan).flatMap((step): FaultPoint[] => (step === "switch" ? ["switch", "switched"] : [step]));
}

for (const [name, p] of Object.entries(PLANS) as [keyof typeof PLANS, (typeof PLANS)[keyof typeof PLANS]][]) {
  for (const point of faultPoints(p.plan)) {
    const kept = point === "switched" || point === "drain";
    test(`${name}: an agent that dies at ${point} is ${kept ? "finished" : "reverted"} by the next one`, async (t) => {
      const s = await planScene(t, name);
      const dying = fakeAgent(s.host, s.stateDir, { dieAt: point });
      void p.run(dying);
      t.is(await dying.died, point);

      const next = fakeAgent(s.host, s.stateDir);
      await next.manager.recover();
      const end = kept ? p.after : p.before;
      t.deepEqual(s.host.running(), end.running);
      t.is(s.host.serving.get("geoip"), end.serving);
      t.true([...s.host.processes.values()].every((process) => process.gated), "every process left passed its gate");
      t.deepEqual(s.host.violations, []);
      t.is(next.manager.snapshot("geoip")?.transaction, null);
      t.is(next.manager.snapshot("geoip")?.live?.release, end.running.find((r) => r.startsWith(end.serving === 7001 ? "blue" : "green"))?.split("=")[1]);
      const stored = next.manager.storedResult("tx");
      if (kept) t.like(stored, { status: OK });
      else t.like(stored, { status: FAILED, errorCode: "ERR_AGENT_RESTARTED", message: `the agent restarted during ${point}; reverted` });
      s.host.outOfService = false;
      t.like(await next.manager.deploy("next", deployOf("v3")), { status: OK }, "the next deploy works");
      t.deepEqual(s.host.violations, []);
    });
  }
}

test("a switch whose previous config could not be put back keeps the new color running", async (t) => {
  const s = await scene(t, "v1");
  s.host.failNext.set("switch", Object.assign(codedError("ERR_NGINX_RELOAD_FAILED", "reload failed"), { rollbackError: new Error("EIO") }));
  t.like(await s.agent.manager.deploy("tx", deployOf("v2")), { status: FAILED, errorCode: "ERR_NGINX_RELOAD_FAILED" });
  t.deepEqual(s.host.running(), ["blue=v1", "green=v2"], "nginx may serve green: it is not stopped");
});

test("in place: a new release that fails its gate is replaced by the previous one again", async (t) => {
  const s = await planScene(t, "in-place");
  s.host.failNext.set("gate", codedError("ERR_HEALTH_DEADLINE", "no healthy answer"));
  t.like(await s.agent.manager.deploy("tx", deployOf("v2", { inPlace: true })), { status: FAILED, errorCode: "ERR_HEALTH_DEADLINE" });
  t.true(s.agent.events.includes("health: v1 is running again on blue"), s.agent.events.join("\n"));
  t.like(s.agent.manager.snapshot("geoip"), { live: { color: "blue", release: "v1" }, liveRef: { release: "v1" } });
});

test("in place: when the previous release cannot start again either, the command says the app is down", async (t) => {
  const s = await planScene(t, "in-place");
  s.host.failNext.set("gate", codedError("ERR_HEALTH_DEADLINE", "no healthy answer"));
  s.host.failStartOf.set("v1", codedError("ERR_PROCESS_SPAWN", "no such file"));
  t.like(await s.agent.manager.deploy("tx", deployOf("v2", { inPlace: true })), { status: FAILED, errorCode: "ERR_HEALTH_DEADLINE" });
  t.true(s.agent.events.includes("health: could not start v1 again on blue: no such file; the app is down on this host"), s.agent.events.join("\n"));
  t.deepEqual(s.host.running(), []);
});

test("a deploy streams the plan's steps in order, and a deploy of the live release changes nothing", async (t) => {
  const s = await scene(t, "v1");
  s.agent.events.length = 0;
  t.like(await s.agent.manager.deploy("tx", deployOf("v2")), { status: OK, deployed: { release: "v2", liveColor: "green", previousRelease: "v1" } });
  const steps = s.agent.events.map((e) => e.slice(0, e.indexOf(":")));
  t.deepEqual([...new Set(steps)], ["preflight", "fetch", "start", "health", "switch", "done"]);
  t.like(await s.agent.manager.deploy("again", deployOf("v2")), { status: OK, deployed: { unchanged: true, release: "v2" } });
  t.deepEqual(s.host.running(), ["blue=v1", "green=v2"]);
});

test("a blue-green deploy tests the switch's config while the new color boots, before its gate", async (t) => {
  const s = await scene(t, "v1");
  const before = s.agent.proxy.pretested.length;
  await s.agent.manager.deploy("tx", deployOf("v2"));
  t.deepEqual(s.agent.proxy.pretested.slice(before), [{ port: s.host.definition.greenPort, started: false }]);
});

test("the new color is warmed once it passed its gate, just before the switch to it; a warm rollback warms its color too", async (t) => {
  const s = await scene(t, "v1");
  const warmedBefore = s.agent.proxy.warmed.length;
  const switchesBefore = s.agent.proxy.switches.length;
  await s.agent.manager.deploy("tx", deployOf("v2"));
  t.deepEqual(s.agent.proxy.warmed.slice(warmedBefore), [{ port: s.host.definition.greenPort, gated: true, switchesBefore }]);
  await s.agent.manager.rollback("back", "geoip");
  t.like(s.agent.proxy.warmed.at(-1), { port: s.host.definition.bluePort, gated: true, switchesBefore: switchesBefore + 1 });
});

test("a Deploy with a health path that is not a plain URL path is refused at the edge", async (t) => {
  const s = await scene(t, "v1");
  const error = await t.throwsAsync(s.agent.manager.deploy("tx", { app: { ...WIRE, health: { path: "/x\r\nX-Evil: 1" } }, release: "v2" }));
  t.is((error as { code?: string }).code, "ERR_INVALID_DEFINITION");
  t.deepEqual(s.host.running(), ["blue=v1"]);
});

test("a Deploy without ports or run command is refused at the edge, before anything changes", async (t) => {
  const s = await scene(t, "v1");
  const error = await t.throwsAsync(s.agent.manager.deploy("tx", { app: { ...WIRE, greenPort: 0 }, release: "v2" }));
  t.is((error as { code?: string }).code, "ERR_INVALID_DEFINITION");
  t.is(error?.message, "the definition of geoip needs two different ports, blue and green");
  const noRun = await t.throwsAsync(s.agent.manager.deploy("tx", { app: { ...WIRE, run: {} }, release: "v2" }));
  t.is(noRun?.message, "the definition of geoip has no run command");
  t.deepEqual(s.host.running(), ["blue=v1"]);
});

test("steps are taken only in the plan's order", async (t) => {
  const saved: unknown[] = [];
  const journal = { save: async (tx: unknown) => void saved.push(tx), progress: () => undefined };
  const tx = new LocalTransaction({ commandId: "c", kind: "deploy", plan: "in-place", color: "blue", release: "v2", definition: DEFINITION, startedAt: 0 }, journal, () => undefined);
  await t.throwsAsync(tx.advance("fetch"), { message: "transaction c (in-place): fetch after the start, expected preflight" });
  await tx.advance("preflight");
  await t.throwsAsync(tx.advance("start"), { message: "transaction c (in-place): start after preflight, expected fetch" });
  await tx.advance("fetch");
  await tx.advance("start");
  await tx.advance("health");
  await t.throwsAsync(tx.advance("switch"), { message: "transaction c (in-place): switch after health, expected the end" });
  t.is(saved.length, 4, "each step taken was saved before it ran");
  t.true(tx.reached("start") && !tx.reached("switch" as never));
});

test("a snapshot saved by an older agent (wire definitions, no plan) reads back with defaults, and an in-place transaction is known as one", (t) => {
  const stateDir = stateDirFor(t);
  const store = new AppStateStore(stateDir);
  const old = {
    definition: WIRE,
    live: { color: "blue", release: "v1" },
    previous: null,
    rollbackTarget: null,
    liveRef: { release: "v1", definition: WIRE },
    transaction: { commandId: "c", kind: "deploy", step: "health", color: "blue", release: "v2", startedAt: 0 },
    results: [],
  };
  // Saved as an older agent wrote it.
  return store.save("geoip", old as never).then(() => {
    const read = store.load("geoip");
    t.like(read?.definition, { health: { check: { kind: "http", path: "/", expectStatus: 200 }, deadlineMs: 60_000 }, run: { stopSignal: "SIGTERM", stopTimeoutMs: 30_000 } });
    t.like(read?.transaction, { plan: "in-place", definition: { name: "geoip" } });
    t.is(read?.liveRef?.definition.keepPreviousMs, 60_000);
  });
});
