import test from "ava";
import type { DeploymentView } from "../api/deployments.js";
import { EXIT, ExitError } from "./exit-error.js";
import { deploymentJson, followDeployment, LiveProgress, PlainProgress, renderDeploymentSummary } from "./progress.js";
import { stdoutTerminal } from "./terminal.js";

const at = Date.UTC(2026, 10, 27, 1, 2, 3);

test("plain progress prints one line per event with the time and the host", (t) => {
  let out = "";
  const view = new PlainProgress((text) => (out += text));
  view.event({ id: 1, at, hostName: null, kind: "batch", message: "batch 1/1: web-1" });
  view.event({ id: 2, at, hostName: "web-1", kind: "step", message: "starting v2 on green (port 7002)" });
  t.is(out, "01:02:03 *            batch 1/1: web-1\n01:02:03 web-1        starting v2 on green (port 7002)\n");
});

test("the live view redraws one line per host in place", (t) => {
  let out = "";
  const view = new LiveProgress((text) => (out += text));
  view.event({ id: 1, at, hostName: "web-1", kind: "step", message: "health gate" });
  view.event({ id: 2, at, hostName: "web-2", kind: "step", message: "starting" });
  view.event({ id: 3, at, hostName: "web-1", kind: "step", message: "switched" });
  const last = out.split("\x1b[3A").at(-1)!;
  t.is(last, "\x1b[2K\n\x1b[2K  web-1          switched\n\x1b[2K  web-2          starting\n");
});

test("on a small terminal the live view clips each line to its width and shows the hosts that changed last, in their own order", (t) => {
  let out = "";
  const view = new LiveProgress((text) => (out += text), { columns: 30, rows: 5, color: false });
  view.event({ id: 1, at, hostName: null, kind: "batch", message: "batch 1/1: web-1, web-2, web-3, web-4, web-5" });
  for (const [i, host] of ["web-1", "web-2", "web-3", "web-4", "web-5"].entries()) {
    view.event({ id: 2 + i, at, hostName: host, kind: "step", message: "starting v2 on green (port 7002)" });
  }
  view.event({ id: 9, at, hostName: "web-2", kind: "step", message: "health gate" });
  const frame = out.slice(out.lastIndexOf("A") + 1);
  // 5 rows: the header, a count of the hidden hosts, two hosts, and the cursor's line.
  t.deepEqual(frame.split("\n").map((line) => line.replace("\x1b[2K", "")), [
    "batch 1/1: web-1, web-2, web…",
    "  … 3 more host(s), not chan…",
    "  web-2          health gate",
    "  web-5          starting v2…",
    "",
  ]);
  t.true(frame.split("\n").every((line) => [...line.replace("\x1b[2K", "")].length <= 29), "no line wraps");
});

test("colour only where the terminal colours: failures red, what went through green, the summary by its outcome", (t) => {
  let out = "";
  const coloured = new LiveProgress((text) => (out += text), { columns: 80, rows: 24, color: true });
  coloured.event({ id: 1, at, hostName: "web-1", kind: "step", message: "health failed (ERR_HEALTH_DEADLINE)" });
  coloured.event({ id: 2, at, hostName: "web-2", kind: "step", message: "switched to green" });
  t.true(out.includes("\x1b[31m  web-1          health failed (ERR_HEALTH_DEADLINE)\x1b[0m"));
  t.true(out.includes("\x1b[32m  web-2          switched to green\x1b[0m"));
  t.true(renderDeploymentSummary(view, { columns: 80, rows: 24, color: true }).startsWith("\x1b[31mdeploy geoip v2: rolled_back"));
  t.false(renderDeploymentSummary(view).includes("\x1b["), "no colour by default");
});

test("NO_COLOR, a dumb terminal or a pipe turn colour off", (t) => {
  const tty = { isTTY: true, columns: 100, rows: 40 } as unknown as NodeJS.WriteStream;
  t.true(stdoutTerminal({}, tty).color);
  t.false(stdoutTerminal({ NO_COLOR: "1" }, tty).color);
  t.false(stdoutTerminal({ TERM: "dumb" }, tty).color);
  t.false(stdoutTerminal({}, { isTTY: false } as unknown as NodeJS.WriteStream).color);
  t.deepEqual([stdoutTerminal({}, tty).columns, stdoutTerminal({}, tty).rows], [100, 40]);
});

const view: DeploymentView = {
  id: "d1", app: "geoip", kind: "deploy", release: "v2", strategy: "bluegreen", state: "rolled_back",
  error: "1 host(s) failed, more than max_failures=0", createdBy: "admin", createdAt: "2026-11-27T01:02:03.000Z",
  finishedAt: "2026-11-27T01:02:05.500Z", durationMs: 2500,
  hosts: [
    { name: "web-1", batch: 1, outcome: "failed", liveColor: "blue", release: "v1", previousRelease: null, error: "health (ERR_HEALTH_DEADLINE)", switchMs: null, bootMs: null, totalMs: 3000, handoverMs: null },
    { name: "web-2", batch: 2, outcome: "skipped", liveColor: null, release: null, previousRelease: null, error: null, switchMs: null, bootMs: null, totalMs: null, handoverMs: null },
  ],
};

test("the summary names the outcome, the reason and each host", (t) => {
  t.is(
    renderDeploymentSummary(view),
    [
      "deploy geoip v2: rolled_back in 2.5s — 1 host(s) failed, more than max_failures=0",
      "HOST   OUTCOME  LIVE  RELEASE  SWITCH  ERROR",
      "web-1  failed   blue  v1       -       health (ERR_HEALTH_DEADLINE)",
      "web-2  skipped  -     -        -",
    ].join("\n"),
  );
});

test("--json ends with status, release and per-host name, outcome, liveColor, release, error", (t) => {
  const json = deploymentJson(view);
  t.is(json.status, "rolled_back");
  t.is(json.release, "v2");
  t.deepEqual(json.hosts.map((h) => [h.name, h.outcome, h.liveColor, h.release, h.error]), [
    ["web-1", "failed", "blue", "v1", "health (ERR_HEALTH_DEADLINE)"],
    ["web-2", "skipped", null, null, null],
  ]);
});

/** A text/event-stream body of these messages, then a break (`fail`) or a clean close. */
function eventStream(messages: { event: string; data: unknown }[], fail?: Error): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const chunks = messages.map((m) => encoder.encode(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`));
  return new ReadableStream({
    // One message per read, then the break: what was sent before a cut still arrives.
    pull(controller) {
      const chunk = chunks.shift();
      if (chunk) controller.enqueue(chunk);
      else if (fail) controller.error(fail);
      else controller.close();
    },
  });
}

const step = (id: number) => ({ id, at, hostName: "web-1", kind: "step", message: `step ${id}` });

test("following a deployment: a stream cut under it, or closed early, is opened again after the last event seen, and nothing is shown twice", async (t) => {
  const asked: string[] = [];
  const streams = [
    eventStream([{ event: "progress", data: step(1) }, { event: "progress", data: step(2) }], new TypeError("terminated")),
    eventStream([]),
    eventStream([{ event: "progress", data: step(3) }, { event: "end", data: view }]),
  ];
  const client = { stream: async (path: string) => (asked.push(path), streams.shift()!) };
  const seen: number[] = [];
  const final = await followDeployment(client, "d1", { event: (e) => seen.push(e.id), end: () => {} }, { times: 10, delayMs: 1 });
  t.is(final.state, "rolled_back");
  t.deepEqual(seen, [1, 2, 3]);
  t.deepEqual(asked, ["/v1/deployments/d1/events?after=0", "/v1/deployments/d1/events?after=2", "/v1/deployments/d1/events?after=2"]);
});

test("following a deployment: a refusal is not retried; a coordinator that stays unreachable is given up on, saying how to follow again", async (t) => {
  const refusing = { stream: async () => Promise.reject(new ExitError("no such deployment (ERR_NOT_FOUND)", EXIT.refused, "ERR_NOT_FOUND")) };
  await t.throwsAsync(followDeployment(refusing, "d1", undefined, { times: 10, delayMs: 1 }), { message: "no such deployment (ERR_NOT_FOUND)" });
  let calls = 0;
  const down = { stream: async () => (calls++, Promise.reject(new ExitError("cannot reach the coordinator", EXIT.unreachable))) };
  const error = await t.throwsAsync(followDeployment(down, "d1", undefined, { times: 10, delayMs: 1 }));
  t.is(calls, 11, "the first try and 10 more");
  t.is((error as ExitError).exitCode, EXIT.unreachable);
  t.regex(error!.message, /^lost deployment d1's progress 11 times in a row \(last: cannot reach the coordinator\); it goes on on the coordinator: `cutover deploy --attach d1` follows it again$/);
});

