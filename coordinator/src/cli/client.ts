import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import type { ClientSettings } from "./config.js";
import { pinnedFetch } from "./pinned-fetch.js";
import { EXIT, ExitError, exitCodeForRefusal } from "./exit-error.js";

/** A thin JSON client for the coordinator's /v1 API; every failure becomes an ExitError that says what to do. */
export class ApiClient {
  private readonly fetch: typeof fetch;

  constructor(private readonly settings: ClientSettings) {
    this.fetch = settings.fingerprint && settings.url.startsWith("https:") ? pinnedFetch(settings.fingerprint) : fetch;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PUT", path, body);
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>("DELETE", path);
  }

  /** Uploads a file as the raw request body. */
  putFile<T>(path: string, file: string, size: number): Promise<T> {
    return this.request<T>("PUT", path, undefined, {
      body: Readable.toWeb(createReadStream(file)) as ReadableStream,
      headers: { "content-type": "application/octet-stream", "content-length": String(size) },
    });
  }

  /** POSTs a file (or nothing) as the raw body and returns the long-lived response's body stream (NDJSON). */
  async postStream(path: string, file?: { path: string; size: number }): Promise<ReadableStream<Uint8Array>> {
    const response = await this.send(
      "POST",
      path,
      file ? { body: Readable.toWeb(createReadStream(file.path)) as ReadableStream, headers: { "content-type": "application/octet-stream", "content-length": String(file.size) } } : {},
    );
    if (!response.ok || !response.body) await this.fail(response, "POST", path);
    return response.body!;
  }

  /** GETs a long-lived response (server-sent events) and returns its body stream. */
  async stream(path: string): Promise<ReadableStream<Uint8Array>> {
    const response = await this.send("GET", path, {});
    if (!response.ok || !response.body) await this.fail(response, "GET", path);
    return response.body!;
  }

  private async send(method: string, path: string, init: { body?: RequestInit["body"]; headers?: Record<string, string> }): Promise<Response> {
    try {
      return await this.fetch(`${this.settings.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.settings.token}`, ...init.headers },
        body: init.body,
        ...(init.body instanceof ReadableStream ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === "ERR_CERT_PIN_MISMATCH") throw new ExitError(`${cause.message}: not talking to it (check CUTOVER_FINGERPRINT)`, EXIT.unreachable);
      if (/CERT|SELF_SIGNED/.test(cause?.code ?? "")) {
        throw new ExitError(`the coordinator's TLS certificate is not trusted here (${cause?.code}): pin it with CUTOVER_FINGERPRINT (\`cutover server --tls\` prints it)`, EXIT.unreachable);
      }
      throw new ExitError(
        `cannot reach the coordinator at ${this.settings.url} (${cause?.code ?? cause?.message ?? (error as Error).message}); ` +
          "is `cutover server` running? Set CUTOVER_URL or --url to its address",
        EXIT.unreachable,
      );
    }
  }

  private async fail(response: Response, method: string, path: string): Promise<never> {
    const text = await response.text();
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      // not JSON: fall through to the status line
    }
    throw new ExitError(`${error?.message ?? `${method} ${path}: HTTP ${response.status}`} (${error?.code ?? response.status})`, exitCodeForRefusal(response.status, error?.code), error?.code);
  }

  private async request<T>(method: string, path: string, body?: unknown, raw?: { body: RequestInit["body"]; headers: Record<string, string> }): Promise<T> {
    const url = `${this.settings.url}${path}`;
    const response = await this.send(
      method,
      path,
      raw ?? { body: body === undefined ? undefined : JSON.stringify(body), headers: body === undefined ? {} : { "content-type": "application/json" } },
    );
    if (!response.ok) await this.fail(response, method, path);
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ExitError(`${method} ${url}: HTTP ${response.status} with a body that is not JSON: is ${this.settings.url} a cutover coordinator?`, EXIT.unreachable);
    }
    return parsed as T;
  }
}
