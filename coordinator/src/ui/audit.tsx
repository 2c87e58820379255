import { get } from "./api.js";
import { clock } from "./format.js";
import { usePoll } from "./poll.js";
import type { AuditEntry } from "./types.js";

const AUDIT_POLL_MS = 5000;
const AUDIT_LIMIT = 200;

/** The audit trail (admin): who did what, when, refused calls included. */
export function AuditPage() {
  const entries = usePoll(() => get<AuditEntry[]>(`/v1/audit?limit=${AUDIT_LIMIT}`), AUDIT_POLL_MS);
  return (
    <section class="page" data-page="audit">
      <header class="page-head">
        <h1>Audit</h1>
        <p class="summary">{entries.data ? `the latest ${entries.data.length} entries, newest first` : "loading…"}</p>
      </header>
      {entries.error && <p class="error" role="alert">{entries.error.message}</p>}
      <table class="audit">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>What</th>
            <th>On</th>
            <th>Outcome</th>
            <th>Detail</th>
          </tr>
        </thead>
        <tbody>
          {(entries.data ?? []).map((e) => (
            <tr key={e.id} class={/^(4|5)\d\d$/.test(e.outcome) ? "refused" : ""}>
              <td>{clock(e.at)}</td>
              <td>{e.actor}</td>
              <td>{e.action}</td>
              <td>{e.target}</td>
              <td>{e.outcome}</td>
              <td class="detail">{e.detail}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
