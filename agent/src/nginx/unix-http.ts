import { Agent, type IncomingHttpHeaders, request } from "node:http";

/**
 * One idle connection kept per control socket: a live switch's dict write then costs no
 * connect and no accept by a worker busy with traffic. Idle sockets are unref'd by the
 * agent, so they never keep the process alive. A reload or restart of nginx closes them
 * (a retiring worker closes its idle connections first); a call on one closed under it
 * is retried once on a new connection (see unixHttp).
 */
const agents = new Map<string, Agent>();

function agentFor(socketPath: string): Agent {
  let agent = agents.get(socketPath);
  if (agent === undefined) {
    agent = new Agent({ keepAlive: true, maxFreeSockets: 1 });
    agents.set(socketPath, agent);
  }
  return agent;
}

/** What a kept-alive socket closed by nginx as the request went out looks like. */
const CLOSED_UNDER_US = new Set(["ECONNRESET", "EPIPE"]);

/**
 * One HTTP call to a control server on a unix socket, on the socket's kept-alive
 * connection. Resolves with a 200 answer (body and headers); rejects with
 * `failed(detail, cause)` otherwise, so each caller raises its own typed error.
 *
 * A kept connection that nginx closed just as the request went out (idle close on reload,
 * restart, keepalive_timeout) fails before any answer; nginx had not read the request, so
 * it is sent once more on a new connection.
 */
export function unixHttp(
  socketPath: string,
  method: "GET" | "PUT" | "DELETE",
  path: string,
  body: string,
  timeoutMs: number,
  failed: (detail: string, cause?: unknown) => Error,
): Promise<UnixAnswer> {
  const call = () => callOnce(socketPath, method, path, body, timeoutMs);
  const fail = (failure: CallFailure) => {
    throw failed(failure.reason.message, failure.reason);
  };
  return call().catch((failure: CallFailure) => (failure.sendAgain ? call().catch(fail) : fail(failure)));
}

/** Why one call failed, and whether it may be sent again. */
class CallFailure {
  constructor(
    readonly reason: Error,
    /** Failed on a reused connection before any answer: nginx never read it. */
    readonly sendAgain = false,
  ) {}
}

/** A control server's 200 answer. */
export interface UnixAnswer {
  body: string;
  headers: IncomingHttpHeaders;
}

function callOnce(socketPath: string, method: string, path: string, body: string, timeoutMs: number): Promise<UnixAnswer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(
      { socketPath, method, path, agent: agentFor(socketPath), headers: { "content-length": Buffer.byteLength(body) }, timeout: timeoutMs },
      (res) => {
        answered = true;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (text += chunk));
        res.on("error", (error) => reject(new CallFailure(error)));
        res.on("end", () => (res.statusCode === 200 ? resolve({ body: text, headers: res.headers }) : reject(new CallFailure(new Error(`status ${res.statusCode}`)))));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error: NodeJS.ErrnoException) => {
      const closedUnderUs = CLOSED_UNDER_US.has(error.code ?? "") || error.message === "socket hang up";
      reject(new CallFailure(error, req.reusedSocket && !answered && closedUnderUs));
    });
    req.end(body);
  });
}
