import express, { type Router } from "express";
import { isValidLabel, LABEL_RULE } from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import { CommandError, CommandStatus, type Fleet } from "../fleet/fleet.js";
import { formatLabels, type HostRecord, type HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";
import { hostView } from "./hosts-view.js";

export interface HostApiDeps {
  fleet: Fleet;
  hosts: HostStore;
  tokens: TokenStore;
  log: Logger;
}

const PING_TIMEOUT_MS = 10_000;


/**
 * The fleet inventory: list, ping, and what only an admin may change — a
 * host's labels and address (never what its agent says on its own) and its
 * membership. Each change names what it was in the audit detail.
 */
export function hostRoutes(deps: HostApiDeps): Router {
  const { fleet, hosts, tokens, log } = deps;
  const router = express.Router();

  const hostNamed = (name: string): HostRecord => {
    const host = hosts.byName(name);
    if (!host) throw new ApiError(404, "ERR_NOT_FOUND", `no host "${name}" is enrolled (\`cutover hosts\` lists them)`);
    return host;
  };

  router.get("/v1/hosts", requireRole(tokens, "read"), (_request, response) => {
    response.json(hosts.list().map((host) => hostView(host, fleet.liveness(host.id), fleet.heartbeatOverdueMs(host.id))));
  });

  // Round trip to every online host (or the named ones): proves the command path end to end.
  router.post("/v1/hosts/ping", requireRole(tokens, "deploy"), async (request, response) => {
    const names = (request.body as { hosts?: unknown } | undefined)?.hosts;
    if (names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === "string"))) {
      throw new ApiError(400, "ERR_BAD_REQUEST", '"hosts" must be an array of host names');
    }
    const selected = hosts.list().filter((h) => (names ? (names as string[]).includes(h.name) : fleet.reachable(h.id)));
    const results = await Promise.all(
      selected.map(async (host) => {
        const started = performance.now();
        try {
          const result = await fleet.sendCommand(host, { ping: { payload: host.name } }, PING_TIMEOUT_MS);
          const ok = result.status === CommandStatus.OK && result.pong?.payload === host.name;
          return { name: host.name, ok, status: CommandStatus[result.status], roundTripMs: performance.now() - started };
        } catch (error) {
          const code = error instanceof CommandError ? error.code : "ERR_INTERNAL";
          return { name: host.name, ok: false, status: code, error: (error as Error).message, roundTripMs: performance.now() - started };
        }
      }),
    );
    response.json(results);
  });

  // { set: { key: value }, remove: [key] }: the labels app selectors match, changed by an admin only.
  router.post("/v1/hosts/:name/labels", requireRole(tokens, "admin"), (request, response) => {
    const host = hostNamed(String(request.params.name));
    const body = (request.body ?? {}) as { set?: unknown; remove?: unknown };
    const set = body.set ?? {};
    const remove = body.remove ?? [];
    if (typeof set !== "object" || set === null || Array.isArray(set)) throw new ApiError(400, "ERR_BAD_REQUEST", '"set" must be an object of label values');
    if (!Array.isArray(remove) || !remove.every((k) => typeof k === "string")) throw new ApiError(400, "ERR_BAD_REQUEST", '"remove" must be an array of label keys');
    const labels: Record<string, string> = { ...host.labels };
    for (const key of remove as string[]) delete labels[key];
    for (const [key, value] of Object.entries(set)) {
      if (typeof value !== "string" || !isValidLabel(key, value)) throw new ApiError(400, "ERR_BAD_REQUEST", `label ${key}=${String(value)} is invalid: ${LABEL_RULE}`);
      labels[key] = value;
    }
    hosts.setLabels(host.id, labels);
    response.locals.auditDetail = `labels ${formatLabels(host.labels)} -> ${formatLabels(labels)}`;
    log.info("host labels set", { by: request.token!.name, host: host.name, labels: formatLabels(labels) });
    response.json(hostView(hostNamed(host.name), fleet.liveness(host.id)));
  });

  // Takes the labels and address the host's agent presents in place of its record.
  router.post("/v1/hosts/:name/accept", requireRole(tokens, "admin"), (request, response) => {
    const host = hostNamed(String(request.params.name));
    if (host.pendingLabels === null && host.pendingAddress === null) {
      throw new ApiError(409, "ERR_NOTHING_PENDING", `host "${host.name}" asks for no change: its agent presents the labels and address on record`);
    }
    const accepted = hosts.acceptPending(host.id);
    response.locals.auditDetail = [
      accepted.labels && `labels ${formatLabels(host.labels)} -> ${formatLabels(accepted.labels)}`,
      accepted.address !== undefined && `address ${host.address || "(none)"} -> ${accepted.address}`,
    ].filter(Boolean).join("; ");
    log.info("host change accepted", { by: request.token!.name, host: host.name, change: response.locals.auditDetail });
    response.json(hostView(hostNamed(host.name), fleet.liveness(host.id)));
  });

  // Retires the host: its session is refused, its key refused from then on, it leaves every selector.
  router.post("/v1/hosts/:name/remove", requireRole(tokens, "admin"), (request, response) => {
    const host = hostNamed(String(request.params.name));
    fleet.remove(host, request.token!.name);
    response.locals.auditDetail = `key of ${host.name} refused from now on`;
    log.warn("host removed from the fleet", { by: request.token!.name, host: host.name });
    response.json({ removed: host.name });
  });

  return router;
}
