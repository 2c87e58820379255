import express, { type Request, type Response, type Router } from "express";
import { isValidLabel, LABEL_RULE } from "@cutover/protocol";
import type { Logger } from "@cutover/log";
import { CommandError, CommandStatus, type Fleet } from "../fleet/fleet.js";
import { inSlices } from "../fleet/fan-out.js";
import { applyCordon, refuseIfDeploying, type LbCordonOutcome } from "../rollout/cordon.js";
import type { AppStore } from "../store/apps.js";
import type { DeploymentStore } from "../store/deployments.js";
import { formatLabels, type HostRecord, type HostStore } from "../store/hosts.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { ApiError } from "./errors.js";
import { hostView, type HostView } from "./hosts-view.js";

export interface HostApiDeps {
  fleet: Fleet;
  hosts: HostStore;
  tokens: TokenStore;
  log: Logger;
  /** Cordons: which apps have the host behind a load balancer, and which deployments run. */
  apps: AppStore;
  deployments: DeploymentStore;
}

/** The most characters a cordon's reason keeps (as a lock's). */
export const MAX_CORDON_REASON_CHARS = 500;

/** What `cordon` and `uncordon` answer: the host as listed, and what each app's load balancer did. */
export interface CordonView {
  host: HostView;
  loadBalancers: LbCordonOutcome[];
}

function cordonReasonOf(body: unknown): string {
  const reason = (body as { reason?: unknown } | undefined)?.reason ?? "";
  if (typeof reason !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", '"reason" must be a string');
  if (reason.length > MAX_CORDON_REASON_CHARS) throw new ApiError(400, "ERR_BAD_REQUEST", `"reason" is ${reason.length} characters; at most ${MAX_CORDON_REASON_CHARS}`);
  // Shown in every deploy that leaves the host out.
  if (/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(reason)) throw new ApiError(400, "ERR_BAD_REQUEST", '"reason" must be one line of printable text');
  return reason.trim();
}

const PING_TIMEOUT_MS = 10_000;


/**
 * The fleet inventory: list, ping, and what only an admin may change — a
 * host's labels and address (never what its agent says on its own) and its
 * membership. Each change names what it was in the audit detail.
 */
/** A hosts stream sends at most once per this long, whatever the number of heartbeats in between. */
const HOSTS_STREAM_COALESCE_MS = 500;
const HOSTS_STREAM_KEEPALIVE_MS = 15_000;

export function hostRoutes(deps: HostApiDeps): Router {
  const { fleet, hosts, tokens, log } = deps;
  const router = express.Router();

  const hostNamed = (name: string): HostRecord => {
    const host = hosts.byName(name);
    if (!host) throw new ApiError(404, "ERR_NOT_FOUND", `no host "${name}" is enrolled (\`cutover hosts\` lists them)`);
    return host;
  };

  const hostList = () => hosts.list().map((host) => hostView(host, fleet.liveness(host.id), fleet.heartbeatOverdueMs(host.id)));

  router.get("/v1/hosts", requireRole(tokens, "read"), (_request, response) => {
    response.json(hostList());
  });

  // Server-sent events: `hosts` with what GET /v1/hosts answers, at once and again whenever a host
  // changes (a heartbeat, a session opened or closed, late or on time again), at most once per
  // HOSTS_STREAM_COALESCE_MS so a large fleet's heartbeats do not each cost a send.
  router.get("/v1/hosts/events", requireRole(tokens, "read"), (request: Request, response: Response) => {
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    const send = () => response.write(`event: hosts\ndata: ${JSON.stringify(hostList())}\n\n`);
    let due: NodeJS.Timeout | undefined;
    const unsubscribe = fleet.subscribeHosts(() => {
      due ??= setTimeout(() => {
        due = undefined;
        send();
      }, HOSTS_STREAM_COALESCE_MS);
    });
    // A comment now and then: proxies between the browser and us close a stream that says nothing.
    const keepAlive = setInterval(() => response.write(": keep-alive\n\n"), HOSTS_STREAM_KEEPALIVE_MS);
    send();
    request.on("close", () => {
      unsubscribe();
      clearTimeout(due);
      clearInterval(keepAlive);
    });
  });

  // Round trip to every online host (or the named ones): proves the command path end to end.
  router.post("/v1/hosts/ping", requireRole(tokens, "deploy"), async (request, response) => {
    const names = (request.body as { hosts?: unknown } | undefined)?.hosts;
    if (names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === "string"))) {
      throw new ApiError(400, "ERR_BAD_REQUEST", '"hosts" must be an array of host names');
    }
    const selected = hosts.list().filter((h) => (names ? (names as string[]).includes(h.name) : fleet.reachable(h.id)));
    // Sent a slice per event-loop turn: each host's round trip runs from its own send to its answer.
    const results = await inSlices(
      selected,
      async (host) => {
        const started = performance.now();
        try {
          const result = await fleet.sendCommand(host, { ping: { payload: host.name } }, PING_TIMEOUT_MS);
          const ok = result.status === CommandStatus.OK && result.pong?.payload === host.name;
          return { name: host.name, ok, status: CommandStatus[result.status], roundTripMs: performance.now() - started };
        } catch (error) {
          const code = error instanceof CommandError ? error.code : "ERR_INTERNAL";
          return { name: host.name, ok: false, status: code, error: (error as Error).message, roundTripMs: performance.now() - started };
        }
      },
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

  // Keeps the host out of deploys and drains it at every front load balancer it is behind.
  // Cordoning a cordoned host keeps its first cordon and applies the drain again (a retry).
  router.post("/v1/hosts/:name/cordon", requireRole(tokens, "admin"), async (request, response) => {
    const host = hostNamed(String(request.params.name));
    const reason = cordonReasonOf(request.body);
    refuseIfDeploying(deps, host, "cordon");
    const cordon = hosts.cordon(host.id, request.token!.name, reason);
    const loadBalancers = await applyCordon(deps, hostNamed(host.name), "drain");
    response.locals.auditDetail = `cordoned by ${cordon.by}; load balancers: ${loadBalancers.map((o) => `${o.app}@${o.lbHost} ${o.ok ? (o.drained === false ? "drain timeout" : "drained") : "FAILED"}`).join(", ") || "none"}`;
    log.warn("host cordoned", { by: request.token!.name, host: host.name, reason });
    response.json({ host: hostView(hostNamed(host.name), fleet.liveness(host.id)), loadBalancers } satisfies CordonView);
  });

  // Back into deploys and load balancers; the cordon is cleared only once every load balancer took the host back.
  router.post("/v1/hosts/:name/uncordon", requireRole(tokens, "admin"), async (request, response) => {
    const host = hostNamed(String(request.params.name));
    if (host.cordon === null) throw new ApiError(409, "ERR_NOT_CORDONED", `host "${host.name}" is not cordoned`);
    refuseIfDeploying(deps, host, "uncordon");
    const loadBalancers = await applyCordon(deps, host, "up");
    if (loadBalancers.every((o) => o.ok)) hosts.uncordon(host.id);
    response.locals.auditDetail = `was cordoned by ${host.cordon.by}; load balancers: ${loadBalancers.map((o) => `${o.app}@${o.lbHost} ${o.ok ? "up" : "FAILED"}`).join(", ") || "none"}`;
    log.info("host uncordoned", { by: request.token!.name, host: host.name, complete: loadBalancers.every((o) => o.ok) });
    response.json({ host: hostView(hostNamed(host.name), fleet.liveness(host.id)), loadBalancers } satisfies CordonView);
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
