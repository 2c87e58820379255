import { randomUUID } from "node:crypto";
import express, { type Router } from "express";
import { isValidName, NAME_RULE } from "@cutover/protocol";
import type { Fleet } from "../fleet/fleet.js";
import type { HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";

const TAIL_TIMEOUT_MS = 10_000;
const MAX_LINES = 10_000;

/**
 * GET /v1/logs?app=A|agent=1&host=H&lines=N&follow=1 — server-sent events:
 * `lines` {host, source, lines} as agents send them; without follow, `end`
 * once every host has sent its last lines. Closing the request stops the streams.
 */
export function logRoutes(deps: { fleet: Fleet; hosts: HostStore; tokens: TokenStore }): Router {
  const router = express.Router();
  // Logs can carry what apps print (request data, secrets they log): a deploy-role right, not a read one.
  router.get("/v1/logs", requireRole(deps.tokens, "deploy"), async (request, response) => {
    const app = typeof request.query.app === "string" ? request.query.app : "";
    const agentLog = request.query.agent === "1";
    const hostName = typeof request.query.host === "string" ? request.query.host : undefined;
    const follow = request.query.follow === "1";
    const lines = Math.min(MAX_LINES, Math.max(0, Number(request.query.lines ?? 100) || 0));
    if (!agentLog && !isValidName(app)) throw new ApiError(400, "ERR_BAD_REQUEST", `app must be ${NAME_RULE} (or ask for the agent's own log with agent=1)`);
    const hosts = deps.hosts
      .list()
      .filter((h) => (hostName ? h.name === hostName : agentLog || h.instances.some((i) => i.app === app)))
      .filter((h) => deps.fleet.reachable(h.id));
    if (hosts.length === 0) {
      throw new ApiError(404, "ERR_NO_HOSTS", hostName ? `host ${hostName} is unknown or unreachable` : `no online host runs ${app}`);
    }
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = (type: string, data: unknown) => response.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    const streamId = randomUUID();
    const unsubscribe = deps.fleet.subscribeLogs(streamId, (host, source, chunk) => send("lines", { host, source, lines: chunk }));
    let closed = false;
    const stop = () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      for (const host of hosts) void deps.fleet.sendCommand(host, { stopLogs: { streamId } }, TAIL_TIMEOUT_MS).catch(() => {});
    };
    request.on("close", stop);
    const results = await Promise.all(
      hosts.map((host) =>
        deps.fleet
          .sendCommand(host, { tailLogs: { streamId, app, agentLog, lines, follow } }, TAIL_TIMEOUT_MS)
          .then((result) => ({ host: host.name, ok: result.status === 1, message: result.message }))
          .catch((error: Error) => ({ host: host.name, ok: false, message: error.message })),
      ),
    );
    for (const failed of results.filter((r) => !r.ok)) send("error", { host: failed.host, message: failed.message });
    if (!follow) {
      send("end", { hosts: results.map((r) => r.host) });
      stop();
      response.end();
    }
  });
  return router;
}
