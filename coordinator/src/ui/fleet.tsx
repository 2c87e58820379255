import { useState } from "preact/hooks";
import { bytes, labelText } from "./format.js";
import { useLive } from "./live.js";
import type { Host } from "./types.js";

type Column = "name" | "state" | "address" | "labels" | "agent" | "cpu" | "memory" | "disk" | "load";

/** Each column's sort key; hosts without a report sort last. */
const SORT_KEYS: Record<Column, (h: Host) => string | number> = {
  name: (h) => h.name,
  state: (h) => ["online", "late", "unreachable"].indexOf(h.state),
  address: (h) => h.address,
  labels: (h) => labelText(h.labels),
  agent: (h) => h.agentVersion,
  cpu: (h) => h.resources?.cpuLoadPercent ?? Infinity,
  memory: (h) => h.resources?.memAvailableBytes ?? Infinity,
  disk: (h) => h.resources?.diskFreeBytes ?? Infinity,
  load: (h) => (h.resources ? h.resources.loadAverage1m / Math.max(1, h.resources.cpuCount) : Infinity),
};

const HEADINGS: [Column, string][] = [
  ["name", "Host"],
  ["state", "State"],
  ["address", "Address"],
  ["labels", "Labels"],
  ["agent", "Agent"],
  ["cpu", "CPU"],
  ["memory", "Memory free"],
  ["disk", "Disk free"],
  ["load", "Load (1m)"],
];

/** `k=v, k2` → the hosts whose labels have each k=v (or the key k at all). */
export function matchesLabels(host: Host, filter: string): boolean {
  return filter
    .split(/[,\s]+/)
    .filter(Boolean)
    .every((term) => {
      const [key, value] = term.split("=", 2) as [string, string | undefined];
      return value === undefined ? key in host.labels : host.labels[key] === value;
    });
}

export function FleetPage() {
  // Pushed by the coordinator at each heartbeat and each change of a host's state (GET /v1/hosts/events).
  const hosts = useLive<Host[]>("/v1/hosts/events", "hosts");
  const [sort, setSort] = useState<{ by: Column; descending: boolean }>({ by: "name", descending: false });
  const [filter, setFilter] = useState("");
  const key = SORT_KEYS[sort.by];
  const shown = (hosts.data ?? [])
    .filter((h) => matchesLabels(h, filter))
    .sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = x < y ? -1 : x > y ? 1 : a.name.localeCompare(b.name);
      return sort.descending ? -order : order;
    });
  const counts = (hosts.data ?? []).reduce<Record<string, number>>((c, h) => ({ ...c, [h.state]: (c[h.state] ?? 0) + 1 }), {});
  return (
    <section class="page" data-page="fleet">
      <header class="page-head">
        <h1>Fleet</h1>
        <p class="summary">
          {hosts.data ? `${hosts.data.length} host(s): ${counts.online ?? 0} online, ${counts.late ?? 0} late, ${counts.unreachable ?? 0} unreachable` : "loading…"}
        </p>
        <label class="filter">
          Labels <input type="search" name="label-filter" placeholder="role=geoip, zone" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
        </label>
      </header>
      {hosts.error && <p class="error" role="alert">{hosts.error.message}</p>}
      <table class="hosts">
        <thead>
          <tr>
            {HEADINGS.map(([column, heading]) => (
              <th aria-sort={sort.by === column ? (sort.descending ? "descending" : "ascending") : undefined}>
                <button type="button" class="sort" data-sort={column} onClick={() => setSort({ by: column, descending: sort.by === column && !sort.descending })}>
                  {heading}
                  {sort.by === column ? (sort.descending ? " ▾" : " ▴") : ""}
                </button>
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((h) => (
            <HostRow host={h} key={h.name} />
          ))}
        </tbody>
      </table>
      {hosts.data && shown.length === 0 && <p class="empty">{hosts.data.length === 0 ? "No host has enrolled yet: start an agent with a token from `cutover token create`." : "No host has those labels."}</p>}
    </section>
  );
}

function HostRow({ host }: { host: Host }) {
  const r = host.resources;
  return (
    <tr data-host={host.name} data-state={host.state}>
      <td data-col="name">
        <span class="host-name">{host.name}</span>
        {host.hostname && host.hostname !== host.name && <span class="sub">{host.hostname}</span>}
        {host.cordoned && <span class="badge cordoned" title={`cordoned by ${host.cordoned.by}: ${host.cordoned.reason}`}>cordoned</span>}
      </td>
      <td data-col="state">
        <span class={`badge state-${host.state}`}>{host.state}</span>
        {host.state === "late" && <span class="sub">{Math.round(host.heartbeatOverdueMs / 1000)} s overdue</span>}
      </td>
      <td data-col="address">{host.address}</td>
      <td data-col="labels">
        {Object.entries(host.labels).map(([k, v]) => (
          <span class="label">
            {k}={v}
          </span>
        ))}
      </td>
      <td data-col="agent">{host.agentVersion}</td>
      <td data-col="cpu">{r ? <Meter percent={r.cpuLoadPercent} text={`${r.cpuLoadPercent.toFixed(0)} % of ${r.cpuCount}`} /> : "–"}</td>
      <td data-col="memory">{r ? <Meter percent={100 - (100 * r.memAvailableBytes) / Math.max(1, r.memTotalBytes)} text={`${bytes(r.memAvailableBytes)} / ${bytes(r.memTotalBytes)}`} /> : "–"}</td>
      <td data-col="disk">{r ? <Meter percent={100 - (100 * r.diskFreeBytes) / Math.max(1, r.diskTotalBytes)} text={`${bytes(r.diskFreeBytes)} / ${bytes(r.diskTotalBytes)}`} /> : "–"}</td>
      <td data-col="load">{r ? `${r.loadAverage1m.toFixed(2)} ${r.loadAverage5m.toFixed(2)} ${r.loadAverage15m.toFixed(2)}` : "–"}</td>
    </tr>
  );
}

/** A bar of how much is used, with the figures beside it. */
export function Meter({ percent, text }: { percent: number; text: string }) {
  const used = Math.max(0, Math.min(100, percent));
  return (
    <span class="meter">
      <span class={`bar${used > 90 ? " hot" : used > 70 ? " warm" : ""}`}>
        <span class="fill" style={{ width: `${used}%` }} />
      </span>
      <span class="figure">{text}</span>
    </span>
  );
}
