import type { Comparator, PrometheusCheck } from "@cutover/spec";

/** A query that did not give one number: unreachable, an error status, or not exactly one sample. */
export class PrometheusQueryError extends Error {}

const QUERY_TIMEOUT_MS = 10_000;

/**
 * Runs an instant query (GET /api/v1/query) and returns its one value: a
 * scalar, or a vector of exactly one sample. Anything else is refused with
 * what came back, so an operator can fix the query.
 */
export async function queryPrometheus(check: Pick<PrometheusCheck, "url" | "query">, fetchImpl: typeof fetch = fetch): Promise<number> {
  const url = new URL("api/v1/query", check.url.endsWith("/") ? check.url : `${check.url}/`);
  url.searchParams.set("query", check.query);
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: AbortSignal.timeout(QUERY_TIMEOUT_MS), redirect: "error" });
  } catch (error) {
    throw new PrometheusQueryError(`Prometheus at ${check.url} did not answer: ${(error as Error).message}`);
  }
  const body = (await response.json().catch(() => undefined)) as PrometheusResponse | undefined;
  if (!response.ok || body?.status !== "success") {
    throw new PrometheusQueryError(`Prometheus at ${check.url} refused the query (HTTP ${response.status}): ${body?.error ?? "no error message"}`);
  }
  const { resultType, result } = body.data ?? {};
  if (resultType === "scalar" && Array.isArray(result)) return sampleValue(result);
  if (resultType === "vector" && Array.isArray(result)) {
    if (result.length !== 1) throw new PrometheusQueryError(`the query gave ${result.length} series; it must give exactly one (wrap it in sum(...) or pick one series)`);
    return sampleValue((result[0] as { value: unknown }).value);
  }
  throw new PrometheusQueryError(`the query gave a ${resultType ?? "missing"} result; it must give a scalar or one series`);
}

interface PrometheusResponse {
  status: "success" | "error";
  error?: string;
  data?: { resultType?: string; result?: unknown[] };
}

function sampleValue(sample: unknown): number {
  const value = Array.isArray(sample) ? Number(sample[1]) : Number.NaN;
  if (!Number.isFinite(value)) throw new PrometheusQueryError(`the query's value is ${Array.isArray(sample) ? String(sample[1]) : "missing"}, not a finite number`);
  return value;
}

/** Whether `value` meets the check's success condition. */
export function meets(value: number, success: { comparator: Comparator; value: number }): boolean {
  switch (success.comparator) {
    case "<":
      return value < success.value;
    case "<=":
      return value <= success.value;
    case ">":
      return value > success.value;
    case ">=":
      return value >= success.value;
    case "==":
      return value === success.value;
    case "!=":
      return value !== success.value;
  }
}
