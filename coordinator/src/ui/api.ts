import { sessionToken } from "./session.js";

/** A refusal from the coordinator: its stable code and the message it gave. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function headers(token: string | null): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function answer<T>(response: Response): Promise<T> {
  const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
  if (!response.ok) {
    throw new ApiError(response.status, body?.error?.code ?? `HTTP_${response.status}`, body?.error?.message ?? `${response.status} ${response.statusText}`);
  }
  return body as T;
}

/** GET an API path with the session's token (or the one given, to check it before signing in). */
export async function get<T>(path: string, token = sessionToken()): Promise<T> {
  return answer<T>(await fetch(path, { headers: headers(token), cache: "no-store" }));
}

export async function post<T>(path: string, body: unknown = {}): Promise<T> {
  return answer<T>(await fetch(path, { method: "POST", headers: { ...headers(sessionToken()), "content-type": "application/json" }, body: JSON.stringify(body) }));
}

/**
 * Reads a server-sent event stream through fetch (EventSource cannot send an
 * Authorization header): calls `onEvent` per event until the stream ends or
 * `signal` aborts. Resolves when the server closes the stream.
 */
export async function streamEvents(path: string, onEvent: (type: string, data: unknown) => void, signal: AbortSignal): Promise<void> {
  const response = await fetch(path, { headers: headers(sessionToken()), signal, cache: "no-store" });
  if (!response.ok || !response.body) await answer(response);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length > 0) onEvent(type, JSON.parse(data.join("\n")));
    }
  }
}
