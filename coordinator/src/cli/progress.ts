import type { DeploymentView } from "../api/deployments.js";
import type { DeploymentEvent } from "../store/deployments.js";
import { setTimeout as sleep } from "node:timers/promises";
import type { ApiClient } from "./client.js";
import { EXIT, ExitError } from "./exit-error.js";
import { readEvents } from "./sse.js";
import { renderTable } from "./table.js";
import { printable } from "./terminal-text.js";
import { clip, paint, PLAIN_TERMINAL, stdoutTerminal, styleOf, type Terminal } from "./terminal.js";

/** How a deploy's progress reaches the terminal. */
export interface ProgressView {
  event(event: DeploymentEvent): void;
  end(): void;
}

function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 19);
}

/** Plain lines, one per event: for logs, CI and pipes. */
export class PlainProgress implements ProgressView {
  constructor(private readonly write: (text: string) => void) {}
  event(event: DeploymentEvent): void {
    this.write(`${clock(event.at)} ${printable(event.hostName ?? "*").padEnd(12)} ${printable(event.message)}\n`);
  }
  end(): void {}
}

/**
 * A live view on a TTY: a header and one line per host with its latest step, redrawn in
 * place. Every line is clipped to the terminal's width (a wrapped line would break the
 * redraw) and the view to its height: with more hosts than rows, the hosts that changed
 * last are shown and a line counts the rest. Steps are coloured by how they read.
 */
export class LiveProgress implements ProgressView {
  /** Each host's latest step, and when it changed (a count of events): lines keep the order hosts first appeared in. */
  private readonly hosts = new Map<string, { message: string; changed: number }>();
  private events = 0;
  private header = "";
  private drawn = 0;
  constructor(
    private readonly write: (text: string) => void,
    private readonly terminal: Terminal = PLAIN_TERMINAL,
  ) {}

  event(event: DeploymentEvent): void {
    this.events += 1;
    if (event.hostName) this.hosts.set(printable(event.hostName), { message: printable(event.message), changed: this.events });
    else this.header = printable(event.message);
    this.draw();
  }

  private draw(): void {
    const { columns, rows } = this.terminal;
    const width = columns - 1;
    // Header, hosts, and room for the cursor's own line.
    const room = Math.max(1, rows - 2);
    const all = [...this.hosts];
    // Too many for the window: the hosts that changed last, still in their own order.
    const latest = all.length > room ? new Set(all.map(([, h]) => h.changed).sort((a, b) => b - a).slice(0, room - 1)) : null;
    const shown = latest ? all.filter(([, h]) => latest.has(h.changed)) : all;
    const hidden = all.length - shown.length;
    const lines = [
      paint(this.terminal, "bold", clip(this.header, width)),
      ...(hidden > 0 ? [paint(this.terminal, "dim", clip(`  … ${hidden} more host(s), not changed lately`, width))] : []),
      ...shown.map(([host, { message }]) => paint(this.terminal, styleOf(message), clip(`  ${host.padEnd(14)} ${message}`, width))),
    ];
    const up = this.drawn > 0 ? `\x1b[${this.drawn}A` : "";
    this.write(up + lines.map((l) => `\x1b[2K${l}\n`).join(""));
    this.drawn = lines.length;
  }

  end(): void {}
}

export function progressView(json: boolean): ProgressView | undefined {
  if (json) return undefined;
  const write = (text: string) => void process.stdout.write(text);
  return process.stdout.isTTY ? new LiveProgress(write, stdoutTerminal()) : new PlainProgress(write);
}

/**
 * How many times in a row a broken event stream is opened again before the CLI gives up on
 * following, and how long it waits before each: a coordinator that restarts is back within a
 * few seconds.
 */
const REOPEN = { times: 10, delayMs: 1000 };

/**
 * Follows a deployment's event stream to its end and returns the final view. A stream that
 * breaks (a connection cut under it, a coordinator restart) is opened again from the last
 * event seen, so nothing is shown twice or missed; after `reopen.times` failures in a row it
 * gives up, saying how to follow again.
 */
export async function followDeployment(client: Pick<ApiClient, "stream">, id: string, view: ProgressView | undefined, reopen = REOPEN): Promise<DeploymentView> {
  let after = 0;
  let failures = 0;
  let lastFailure = "";
  for (;;) {
    try {
      const body = await client.stream(`/v1/deployments/${encodeURIComponent(id)}/events?after=${after}`);
      for await (const message of readEvents(body)) {
        if (message.event === "progress") {
          const event = JSON.parse(message.data) as DeploymentEvent;
          after = event.id;
          failures = 0;
          view?.event(event);
        }
        if (message.event === "end") {
          view?.end();
          return JSON.parse(message.data) as DeploymentView;
        }
      }
      lastFailure = "the coordinator closed the stream before the deployment ended";
    } catch (error) {
      // Refused (the deployment is unknown, the token revoked): following again changes nothing.
      if (error instanceof ExitError && error.exitCode !== EXIT.unreachable) throw error;
      lastFailure = error instanceof Error ? error.message : String(error);
    }
    failures += 1;
    if (failures > reopen.times) {
      throw new ExitError(`lost deployment ${id}'s progress ${failures} times in a row (last: ${lastFailure}); it goes on on the coordinator: \`cutover deploy --attach ${id}\` follows it again`, EXIT.unreachable);
    }
    await sleep(reopen.delayMs);
  }
}

export function renderDeploymentSummary(d: DeploymentView, terminal: Terminal = PLAIN_TERMINAL): string {
  const seconds = d.durationMs !== null ? ` in ${(d.durationMs / 1000).toFixed(1)}s` : "";
  const title = `${d.kind} ${d.app} ${d.release}: ${d.state}${seconds}${d.error ? ` — ${d.error}` : ""}`;
  const table = renderTable(
    ["HOST", "OUTCOME", "LIVE", "RELEASE", "SWITCH", "ERROR"],
    d.hosts.map((h) => [h.name, h.outcome, h.liveColor ?? "-", h.release ?? "-", h.switchMs !== null ? `${h.switchMs.toFixed(1)}ms` : "-", h.error ?? ""]),
  );
  return `${paint(terminal, d.state === "succeeded" ? "green" : "red", printable(title))}\n${table}`;
}

/** The one JSON object `deploy --json` and `rollback --json` end with. */
export function deploymentJson(d: DeploymentView) {
  return {
    id: d.id,
    app: d.app,
    kind: d.kind,
    status: d.state,
    release: d.release,
    durationMs: d.durationMs,
    error: d.error,
    hosts: d.hosts.map((h) => ({ name: h.name, outcome: h.outcome, liveColor: h.liveColor, release: h.release, error: h.error, switchMs: h.switchMs, bootMs: h.bootMs, totalMs: h.totalMs, handoverMs: h.handoverMs })),
  };
}
