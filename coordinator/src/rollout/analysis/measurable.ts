import type { AnalysisSpec, AppSpec } from "@cutover/spec";
import type { HostRecord } from "../../store/hosts.js";
import { matchesSelector } from "../plan.js";

/** The capability an agent announces when its nginx sites count requests (agent/src/requests/request-counters.ts). */
export const COUNTS_REQUESTS = "requests.counted";

/** The spec's analyses, wherever the strategy carries one. */
function analysesOf(spec: AppSpec): AnalysisSpec[] {
  const s = spec.strategy;
  const found = s.type === "canary" ? s.canary.analysis : s.type === "fleet-bluegreen" ? s.analysis : s.verify;
  return found ? [found] : [];
}

/**
 * Why the spec's request checks (max_error_rate, max_latency_p99) could not be
 * measured on these hosts, or undefined: http sites count (live mode in Lua,
 * the managed nginx's reload mode in request logs), at the front LB when the
 * spec has one, else at the app hosts. Refused before anything is deployed, rather than an analysis
 * that can only ever be inconclusive.
 */
export function unmeasurable(spec: AppSpec, appHosts: HostRecord[], allHosts: HostRecord[]): string | undefined {
  if (!analysesOf(spec).some((a) => a.maxErrorRatePercent !== undefined || a.maxLatencyP99Ms !== undefined)) return undefined;
  if (spec.proxy.protocol === "tcp") return "max_error_rate and max_latency_p99 judge HTTP requests; a tcp app has none (use a prometheus check)";
  const counting = spec.lb ? allHosts.filter((h) => matchesSelector(h.labels, spec.lb!.hosts)) : appHosts;
  const blind = counting.filter((h) => !h.capabilities.includes(COUNTS_REQUESTS)).map((h) => h.name);
  if (blind.length === 0) return undefined;
  return `${blind.join(", ")} do not count requests (a system nginx in reload mode), so max_error_rate / max_latency_p99 cannot be measured there: install libnginx-mod-http-lua, or judge by a prometheus check`;
}
