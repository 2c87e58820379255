// CPU profiles of a benchmarked process, phase by phase, through the V8
// inspector (the same sampling profiler as `node --cpu-prof`, which only
// writes its file on a clean exit — useless for a process the bench kills
// with SIGKILL). The process must run with `--inspect=127.0.0.1:PORT`.
import { writeFileSync } from "node:fs";
import { basename } from "node:path";
import WebSocket from "ws";

/** Connects to the inspector of the process listening on `port`; returns start()/stop() for one profile at a time. */
export async function attachProfiler(port, { samplingIntervalUs = 500 } = {}) {
  let list;
  for (let i = 0; i < 50 && !list; i++) {
    list = await fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json(), () => undefined);
    if (!list) await new Promise((r) => setTimeout(r, 100));
  }
  if (!list?.[0]) throw new Error(`no inspector on 127.0.0.1:${port}`);
  const socket = new WebSocket(list[0].webSocketDebuggerUrl, { perMessageDeflate: false, maxPayload: 1024 ** 3 });
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let nextId = 1;
  const waiting = new Map();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data));
    const waiter = waiting.get(message.id);
    if (!waiter) return;
    waiting.delete(message.id);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  socket.on("error", () => {});
  const call = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: samplingIntervalUs });
  return {
    start: () => call("Profiler.start"),
    stop: async () => (await call("Profiler.stop")).profile,
    /** Lets a process started with --inspect-brk run. */
    resume: () => call("Runtime.runIfWaitingForDebugger"),
    close: () => socket.terminate(),
  };
}

/** Self time per function and per file of a .cpuprofile, heaviest first; idle time apart. */
export function summarizeProfile(profile, top = 12) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const label = (callFrame) => `${callFrame.functionName || "(anonymous)"} ${callFrame.url ? `${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}` : ""}`.trim();
  // Native code (a SQLite statement's run, a socket's writev) is charged to the nearest JavaScript caller of this repo.
  const ownCaller = (id) => {
    for (let at = parent.get(id); at !== undefined; at = parent.get(at)) {
      const { callFrame } = byId.get(at);
      if (/\/(coordinator|agent|packages\/[^/]+)\/dist\//.test(callFrame.url)) return label(callFrame);
    }
    return "(no caller in this repo)";
  };
  const functions = new Map();
  const files = new Map();
  const callers = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id);
    if (callFrame.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    totalUs += us;
    const file = callFrame.url ? shortUrl(callFrame.url) : callFrame.functionName;
    const fn = label(callFrame);
    functions.set(fn, (functions.get(fn) ?? 0) + us);
    files.set(file, (files.get(file) ?? 0) + us);
    if (!/\/(coordinator|agent|packages\/[^/]+)\/dist\//.test(callFrame.url) && !/^\((garbage collector|program)\)$/.test(callFrame.functionName)) {
      const caller = ownCaller(id);
      callers.set(caller, (callers.get(caller) ?? 0) + us);
    }
  }
  // Add each repo function's own self time, so the caller ranking reads as "time under this function, outside this repo's code, plus its own".
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id);
    if (/\/(coordinator|agent|packages\/[^/]+)\/dist\//.test(callFrame.url)) callers.set(label(callFrame), (callers.get(label(callFrame)) ?? 0) + us);
  }
  const rank = (map) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), percent: Math.round((1000 * us) / Math.max(1, totalUs)) / 10 }));
  return { busyMs: Math.round(totalUs / 1000), idleMs: Math.round(idleUs / 1000), functions: rank(functions), files: rank(files), repoCallers: rank(callers) };
}

/** node_modules/<pkg>/... → <pkg>/file; repo files relative to the repo; node internals as node:... */
function shortUrl(url) {
  const path = url.replace(/^file:\/\//, "");
  const module = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path);
  if (module) return `${module[1]}/${basename(module[2])}`;
  const repo = /\/(coordinator|agent|packages\/[^/]+)\/dist\/(.*)$/.exec(path);
  if (repo) return `${repo[1]}/${repo[2]}`;
  return path.startsWith("node:") ? path : basename(path);
}

export function printSummary(title, summary) {
  const lines = [`-- profile: ${title}: ${summary.busyMs} ms busy, ${summary.idleMs} ms idle; top self time:`];
  for (const f of summary.functions) lines.push(`   ${String(f.percent).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}`);
  lines.push("   by file: " + summary.files.slice(0, 8).map((f) => `${f.name} ${f.percent}%`).join(", "));
  lines.push("   by this repo's function (own time + library/native time below it): " + summary.repoCallers.slice(0, 8).map((f) => `${f.name} ${f.percent}%`).join(", "));
  console.log(lines.join("\n"));
}

export function saveProfile(path, profile) {
  writeFileSync(path, JSON.stringify(profile));
}
