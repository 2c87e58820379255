import { useEffect, useState } from "preact/hooks";
import { get, post, streamEvents } from "./api.js";
import { useConfirm, type Confirmation } from "./confirm.js";
import { clock, duration } from "./format.js";
import { usePoll } from "./poll.js";
import { FINISHED, type Deployment, type DeploymentEvent, type Role } from "./types.js";

const LIST_POLL_MS = 3000;
const HISTORY_PER_APP = 20;
/** A dropped event stream is picked up again from the last event seen after this long. */
const STREAM_RETRY_MS = 2000;
/** How often a running deployment's page redraws its clock. */
const CLOCK_TICK_MS = 1000;

export function canChange(role: Role): boolean {
  return role === "deploy" || role === "admin";
}

/** Every app's deployments, newest first (the API lists them per app). */
async function allDeployments(): Promise<Deployment[]> {
  const apps = await get<string[]>("/v1/apps");
  const lists = await Promise.all(apps.map((app) => get<Deployment[]>(`/v1/apps/${encodeURIComponent(app)}/history?limit=${HISTORY_PER_APP}`)));
  return lists.flat().sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

export function DeploymentsPage() {
  const list = usePoll(allDeployments, LIST_POLL_MS);
  const running = (list.data ?? []).filter((d) => !FINISHED.includes(d.state));
  return (
    <section class="page" data-page="deployments">
      <header class="page-head">
        <h1>Deployments</h1>
        <p class="summary">{list.data ? `${running.length} running, ${list.data.length} shown` : "loading…"}</p>
      </header>
      {list.error && <p class="error" role="alert">{list.error.message}</p>}
      <table class="deployments">
        <thead>
          <tr>
            <th>Started</th>
            <th>App</th>
            <th>What</th>
            <th>Strategy</th>
            <th>State</th>
            <th>Hosts</th>
            <th>By</th>
            <th>Duration</th>
          </tr>
        </thead>
        <tbody>
          {(list.data ?? []).map((d) => (
            <tr data-deployment={d.id} data-state={d.state} key={d.id}>
              <td>
                <a href={`#/deployments/${encodeURIComponent(d.id)}`}>{clock(d.createdAt)}</a>
              </td>
              <td>{d.app}</td>
              <td>{d.kind === "rollback" ? `rollback to ${d.release}` : `deploy ${d.release}`}</td>
              <td>{d.strategy}</td>
              <td>
                <span class={`badge outcome-${d.state}`}>{d.state}</span>
              </td>
              <td>{hostCounts(d)}</td>
              <td>{d.createdBy}</td>
              <td>{d.durationMs === null ? `${duration(Date.now() - Date.parse(d.createdAt))} so far` : duration(d.durationMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.data?.length === 0 && <p class="empty">Nothing deployed yet: `cutover deploy SPEC --release V`.</p>}
    </section>
  );
}

function hostCounts(d: Deployment): string {
  const done = d.hosts.filter((h) => h.outcome === "succeeded").length;
  return `${done}/${d.hosts.length} succeeded`;
}

/**
 * The deployment's record and its events: every event so far, then the live
 * ones, streamed until the deployment ends; the record is read again when a
 * host or the deployment changes state.
 */
function useDeployment(id: string): { deployment: Deployment | undefined; events: DeploymentEvent[]; error: string | null; reload(): void } {
  const [deployment, setDeployment] = useState<Deployment | undefined>(undefined);
  const [events, setEvents] = useState<DeploymentEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const abort = new AbortController();
    let last = 0;
    let ended = false;
    // One read of the record at a time; an event during a read asks for one more after it,
    // so the last change (e.g. running → paused, after which nothing more happens) is never missed.
    let reading = false;
    let again = false;
    const reload = () => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      again = false;
      get<Deployment>(`/v1/deployments/${encodeURIComponent(id)}`)
        .then((d) => {
          if (!abort.signal.aborted) setDeployment(d);
        })
        .catch((caught: Error) => {
          if (!abort.signal.aborted) setError(caught.message);
        })
        .finally(() => {
          reading = false;
          if (again && !abort.signal.aborted) reload();
        });
    };
    reload();
    setEvents([]);
    const follow = async () => {
      while (!ended && !abort.signal.aborted) {
        try {
          await streamEvents(
            `/v1/deployments/${encodeURIComponent(id)}/events?after=${last}`,
            (type, data) => {
              if (type === "progress") {
                const event = data as DeploymentEvent;
                last = event.id;
                setEvents((all) => [...all, event]);
                reload();
              } else if (type === "end") {
                ended = true;
                setDeployment(data as Deployment);
              }
            },
            abort.signal,
          );
          setError(null);
        } catch (caught) {
          if (abort.signal.aborted) return;
          setError(`event stream: ${(caught as Error).message}; retrying`);
        }
        if (!ended) await new Promise((resolve) => setTimeout(resolve, STREAM_RETRY_MS));
      }
    };
    void follow();
    return () => abort.abort();
  }, [id, tick]);
  return { deployment, events, error, reload: () => setTick((t) => t + 1) };
}

/** Re-renders every `everyMs` while `ticking`: the "so far" and the timeline's right edge move with the clock. */
function useClock(ticking: boolean, everyMs: number): void {
  const [, setNow] = useState(0);
  useEffect(() => {
    if (!ticking) return;
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [ticking, everyMs]);
}

export function DeploymentPage({ id, role, go }: { id: string; role: Role; go(path: string): void }) {
  const { deployment: d, events, error } = useDeployment(id);
  const confirm = useConfirm();
  useClock(d !== undefined && !FINISHED.includes(d.state), CLOCK_TICK_MS);
  if (!d) return <section class="page">{error ? <p class="error" role="alert">{error}</p> : <p>loading…</p>}</section>;
  const finished = FINISHED.includes(d.state);
  return (
    <section class="page" data-page="deployment" data-deployment={d.id} data-state={d.state}>
      <header class="page-head">
        <h1>
          {d.app}: {d.kind === "rollback" ? `rollback to ${d.release}` : `deploy ${d.release}`}
        </h1>
        <p class="summary">
          <span class={`badge outcome-${d.state}`} data-field="state">{d.state}</span> {d.strategy} · started {clock(d.createdAt)} by {d.createdBy} ·{" "}
          {finished ? `took ${duration(d.durationMs)}` : `${duration(Date.now() - Date.parse(d.createdAt))} so far`} · {hostCounts(d)}
        </p>
        {canChange(role) && <Actions deployment={d} ask={confirm.ask} go={go} />}
      </header>
      {/* While paused the record's error field says why it waits (a canary awaiting promotion): a note, not a failure. */}
      {d.error && (
        <p class={d.state === "paused" ? "note" : "error deployment-error"} data-field="error">
          {d.error}
        </p>
      )}
      {error && <p class="error" role="alert">{error}</p>}
      <h2>Timeline</h2>
      <Timeline deployment={d} events={events} />
      <h2>Hosts</h2>
      <table class="deployment-hosts">
        <thead>
          <tr>
            <th>Batch</th>
            <th>Host</th>
            <th>Outcome</th>
            <th>Live color</th>
            <th>Release</th>
            <th>Took</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {d.hosts.map((h) => (
            <tr data-host={h.name} data-outcome={h.outcome} key={h.name}>
              <td>{h.batch === 0 ? "left out" : h.batch}</td>
              <td>{h.name}</td>
              <td>
                <span class={`badge outcome-${h.outcome}`}>{h.outcome}</span>
              </td>
              <td>{h.liveColor ?? "–"}</td>
              <td>{h.release ? `${h.previousRelease ? `${h.previousRelease} → ` : ""}${h.release}` : "–"}</td>
              <td>{duration(h.totalMs)}</td>
              <td class="error-text">{h.error ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Analysis events={events} />
      <h2>Events</h2>
      <ol class="events" data-count={events.length}>
        {events.map((e) => (
          <li data-kind={e.kind} key={e.id}>
            <time>{clock(e.at).slice(11)}</time> <span class="event-host">{e.hostName ?? "*"}</span> <span class="event-message">{e.message}</span>
          </li>
        ))}
      </ol>
      {confirm.dialog}
    </section>
  );
}

/** The actions the deployment's state allows, each asking first what it will do. */
function Actions({ deployment: d, ask, go }: { deployment: Deployment; ask(c: Confirmation): void; go(path: string): void }) {
  const app = encodeURIComponent(d.app);
  const control = (action: "pause" | "resume" | "promote" | "abort", consequence: string): Confirmation => ({
    action: action[0]!.toUpperCase() + action.slice(1),
    consequence,
    run: async () => void (await post(`/v1/apps/${app}/${action}`)),
  });
  const buttons: Confirmation[] = [];
  if (d.state === "running") buttons.push(control("pause", `Pause the ${d.strategy} deployment of ${d.app} ${d.release} before its next step; hosts already switched keep serving ${d.release}.`));
  // As the coordinator decides (Rollouts.control): a canary waiting for promotion is promoted, not resumed.
  const awaitingPromotion = d.strategy === "canary" && d.state === "paused" && !d.hosts.some((h) => h.batch > 1 && h.outcome !== "pending");
  if (d.state === "paused" && !awaitingPromotion) buttons.push(control("resume", `Resume the deployment of ${d.app} ${d.release} from where it stopped.`));
  if (awaitingPromotion) buttons.push(control("promote", `Promote the canary: deploy ${d.app} ${d.release} to the rest of the fleet (${d.hosts.length} host(s) in this deployment).`));
  if (d.state === "running" || d.state === "paused") {
    buttons.push(control("abort", `Abort the deployment of ${d.app} ${d.release} and roll back every host it changed to its previous release.`));
  }
  if (FINISHED.includes(d.state)) {
    buttons.push({
      action: "Rollback",
      consequence: `Roll every host of ${d.app} back to its previous release (a new deployment of kind rollback).`,
      run: async () => go(`/deployments/${encodeURIComponent((await post<Deployment>(`/v1/apps/${app}/rollback`)).id)}`),
    });
  }
  return (
    <div class="actions">
      {buttons.map((b) => (
        <button type="button" class={b.action === "Abort" || b.action === "Rollback" ? "danger" : ""} data-action={b.action.toLowerCase()} onClick={() => ask(b)}>
          {b.action}
        </button>
      ))}
    </div>
  );
}

/** The step an agent's progress line is at: the coordinator keeps the line, not the step's name. */
export function stepOf(message: string): string {
  if (/fail|refused|error/i.test(message)) return "failed";
  if (/^preflight/i.test(message)) return "preflight";
  if (/unpacked|fetch|download/i.test(message)) return "fetch";
  if (/^(starting|stopping)/i.test(message)) return "start";
  if (/health/i.test(message)) return "health";
  if (/switch/i.test(message)) return "switch";
  if (/live on|kept warm|drain|serving|already/i.test(message)) return "done";
  if (/rolled back|rollback/i.test(message)) return "rollback";
  return "other";
}

/**
 * One row per host, one bar per step from the event that began it to the next
 * (the last one to the deployment's end, or now), on the deployment's clock.
 */
function Timeline({ deployment: d, events }: { deployment: Deployment; events: DeploymentEvent[] }) {
  const start = Date.parse(d.createdAt);
  const end = d.finishedAt ? Date.parse(d.finishedAt) : Math.max(Date.now(), ...events.map((e) => e.at));
  const span = Math.max(1, end - start);
  const at = (t: number) => `${(100 * Math.max(0, t - start)) / span}%`;
  // Batches count from 1; 0 holds the hosts the deployment left out (cordoned, failing preflight).
  const batches = [...new Set(d.hosts.map((h) => h.batch))].sort((a, b) => a - b);
  return (
    <div class="timeline" data-span-ms={span}>
      <div class="axis">
        <span>{clock(start).slice(11)}</span>
        <span>{duration(span)}</span>
        <span>{clock(end).slice(11)}</span>
      </div>
      {batches.map((batch) => (
        <div class="batch" data-batch={batch}>
          <div class="batch-name">{batch === 0 ? "left out" : `batch ${batch}/${batches.filter((b) => b > 0).length}`}</div>
          {d.hosts
            .filter((h) => h.batch === batch)
            .map((h) => {
              const own = events.filter((e) => e.hostName === h.name && e.kind === "step");
              return (
                <div class="lane" data-host={h.name}>
                  <span class="lane-name">{h.name}</span>
                  <span class="lane-track">
                    {own.map((e, i) => {
                      const until = own[i + 1]?.at ?? (FINISHED.includes(d.state) || h.outcome !== "running" ? Math.max(e.at, end) : end);
                      return <span class={`step step-${stepOf(e.message)}`} title={`${clock(e.at).slice(11)} ${e.message}`} style={{ left: at(e.at), width: `max(3px, ${(100 * (until - e.at)) / span}%)` }} />;
                    })}
                  </span>
                  <span class={`badge outcome-${h.outcome}`}>{h.outcome}</span>
                </div>
              );
            })}
        </div>
      ))}
      <div class="legend">
        {["preflight", "fetch", "start", "health", "switch", "done", "failed"].map((s) => (
          <span class="key">
            <span class={`swatch step-${s}`} />
            {s}
          </span>
        ))}
      </div>
    </div>
  );
}

/** Load balancer weights and analysis measurements, as the coordinator logged them. */
function Analysis({ events }: { events: DeploymentEvent[] }) {
  const lines = events.filter((e) => e.kind === "analysis" || e.kind === "lb");
  if (lines.length === 0) return null;
  return (
    <>
      <h2>Load balancer and analysis</h2>
      <ol class="events analysis">
        {lines.map((e) => (
          <li data-kind={e.kind} key={e.id}>
            <time>{clock(e.at).slice(11)}</time> <span class="event-host">{e.hostName ?? "*"}</span> <span class="event-message">{e.message}</span>
          </li>
        ))}
      </ol>
    </>
  );
}
