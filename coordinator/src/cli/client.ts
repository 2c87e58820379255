import type { ClientSettings } from "./config.js";
import { ExitError } from "./exit-error.js";

/** A thin JSON client for the coordinator's /v1 API; every failure becomes an ExitError that says what to do. */
export class ApiClient {
  constructor(private readonly settings: ClientSettings) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `${this.settings.url}${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.settings.token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new ExitError(
        `cannot reach the coordinator at ${this.settings.url} (${cause?.code ?? cause?.message ?? (error as Error).message}); ` +
          "is `cutover server` running? Set CUTOVER_URL or --url to its address",
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ExitError(`${method} ${url}: HTTP ${response.status} with a body that is not JSON`);
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ExitError(`${error?.message ?? `HTTP ${response.status}`} (${error?.code ?? response.status})`);
    }
    return parsed as T;
  }
}
