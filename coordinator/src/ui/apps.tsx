import { get, post } from "./api.js";
import { useConfirm } from "./confirm.js";
import { canChange } from "./deployments.js";
import { clock } from "./format.js";
import { usePoll } from "./poll.js";
import type { AppReleases, AppStatus, Deployment, Role } from "./types.js";

const APPS_POLL_MS = 3000;

interface AppView {
  status: AppStatus;
  releases: AppReleases | null;
}

async function allApps(): Promise<AppView[]> {
  const names = await get<string[]>("/v1/apps");
  return Promise.all(
    names.map(async (app) => {
      const path = `/v1/apps/${encodeURIComponent(app)}`;
      const [status, releases] = await Promise.all([get<AppStatus>(`${path}/status`), get<AppReleases>(`${path}/releases`).catch(() => null)]);
      return { status, releases };
    }),
  );
}

export function AppsPage({ role, go }: { role: Role; go(path: string): void }) {
  const apps = usePoll(allApps, APPS_POLL_MS);
  const confirm = useConfirm();
  return (
    <section class="page" data-page="apps">
      <header class="page-head">
        <h1>Apps</h1>
        <p class="summary">{apps.data ? `${apps.data.length} app(s)` : "loading…"}</p>
      </header>
      {apps.error && <p class="error" role="alert">{apps.error.message}</p>}
      {(apps.data ?? []).map(({ status, releases }) => {
        const kept = new Map((releases?.hosts ?? []).map((h) => [h.name, h.releases]));
        return (
          <article class="app" data-app={status.app} key={status.app}>
            <header>
              <h2>{status.app}</h2>
              {status.deployment && (
                <a class="running" href={`#/deployments/${encodeURIComponent(status.deployment.id)}`}>
                  {status.deployment.state}: {status.deployment.kind} {status.deployment.release}
                </a>
              )}
              {canChange(role) && !status.deployment && (
                <div class="actions">
                  <button
                    type="button"
                    class="danger"
                    data-action="rollback"
                    onClick={() =>
                      confirm.ask({
                        action: "Rollback",
                        consequence: `Roll every host of ${status.app} back to its previous release (a new deployment of kind rollback).`,
                        run: async () => go(`/deployments/${encodeURIComponent((await post<Deployment>(`/v1/apps/${encodeURIComponent(status.app)}/rollback`)).id)}`),
                      })
                    }
                  >
                    Rollback
                  </button>
                </div>
              )}
            </header>
            <table>
              <thead>
                <tr>
                  <th>Host</th>
                  <th>State</th>
                  <th>Live color</th>
                  <th>Release</th>
                  <th>Health</th>
                  <th>Kept releases</th>
                </tr>
              </thead>
              <tbody>
                {status.hosts.map((h) => (
                  <tr data-host={h.name} key={h.name}>
                    <td>{h.name}</td>
                    <td>
                      <span class={`badge state-${h.state}`}>{h.state}</span>
                    </td>
                    <td>{h.liveColor ? <span class={`color color-${h.liveColor}`}>{h.liveColor}</span> : "–"}</td>
                    <td>{h.release ?? "–"}</td>
                    <td>
                      <span class={`badge health-${h.health}`}>{h.health}</span>
                    </td>
                    <td>
                      {(kept.get(h.name) ?? []).map((r) => (
                        <span class={`label${r.live ? " live" : ""}`} title={`unpacked ${clock(r.unpackedAt)}`}>
                          {r.release}
                        </span>
                      ))}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {status.analysis.length > 0 && (
              <ol class="events analysis">
                {status.analysis.map((line) => (
                  <li>{line}</li>
                ))}
              </ol>
            )}
          </article>
        );
      })}
      {apps.data?.length === 0 && <p class="empty">No app has been deployed yet.</p>}
      {confirm.dialog}
    </section>
  );
}
