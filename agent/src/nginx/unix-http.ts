import { request } from "node:http";

/**
 * One HTTP call to a control server on a unix socket, on a fresh connection
 * (a reload never leaves us on a closing worker). Resolves with the body of a
 * 200 answer; rejects with `failed(detail, cause)` otherwise, so each caller
 * raises its own typed error.
 */
export function unixHttp(
  socketPath: string,
  method: "GET" | "PUT" | "DELETE",
  path: string,
  body: string,
  timeoutMs: number,
  failed: (detail: string, cause?: unknown) => Error,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, method, path, agent: false, headers: { "content-length": Buffer.byteLength(body), connection: "close" }, timeout: timeoutMs },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("error", (error) => reject(failed(error.message, error)));
        res.on("end", () => (res.statusCode === 200 ? resolve(text) : reject(failed(`status ${res.statusCode}`))));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error) => reject(failed(error.message, error)));
    req.end(body);
  });
}
