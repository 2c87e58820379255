import type { Request, RequestHandler } from "express";
import type { AuditStore } from "../store/audit.js";
import type { RefusalVerdict } from "./refused-calls.js";

/** The body fields an audit row's detail repeats (only ever read from an authorized caller's body). */
const DETAIL_FIELDS = ["release", "role", "name", "ttl", "expires", "labels", "address", "reason"];

/** What an audited call acted on, read from its path and body. */
export function auditTarget(path: string, body: Record<string, unknown>): string {
  const [, , collection, id] = path.split("/");
  if ((collection === "apps" || collection === "artifacts") && id) return id;
  if (collection === "tokens" && id === "api") return `api token ${typeof body.name === "string" ? body.name : ""}`.trim();
  if (collection === "tokens" && id === "enrollment") return "enrollment token";
  if (collection === "tokens" && id) return `token ${id}`;
  if (collection === "hosts" && id && id !== "ping") return id;
  if (collection === "hosts") return Array.isArray(body.hosts) ? body.hosts.join(",") : "every online host";
  if (collection === "deployments" && typeof body.spec === "string") return /^app:\s*(\S+)/m.exec(body.spec)?.[1] ?? "";
  return "";
}

/** The caller's address as the audit trail and the refusal limits name it (an IPv4-mapped IPv6 address as plain IPv4). */
export function remoteAddress(request: Request): string {
  return (request.socket.remoteAddress ?? "unknown").replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, "$1");
}

/**
 * Every call that could change something is audited once it is answered,
 * refused ones included, and so is every refused read (someone trying
 * tokens) — except the refused calls RefusedCalls only counted: their
 * summary row tells of them.
 */
export function auditTrail(audit: AuditStore): RequestHandler {
  return (request, response, next) => {
    response.on("finish", () => {
      const refusal = response.locals.refusal as RefusalVerdict | undefined;
      if (refusal !== undefined ? refusal !== "audit" : request.method === "GET" || request.method === "HEAD") return;
      const body = (request.body ?? {}) as Record<string, unknown>;
      const fields = DETAIL_FIELDS.filter((k) => typeof body[k] === "string").map((k) => `${k}=${String(body[k])}`);
      // What a handler says it changed (e.g. a host's labels before and after).
      if (typeof response.locals.auditDetail === "string") fields.push(response.locals.auditDetail);
      fields.push(`from=${remoteAddress(request)}`);
      audit.record({
        actor: request.token?.name ?? "(no valid token)",
        action: `${request.method} ${request.path}`,
        target: auditTarget(request.path, body),
        outcome: String(response.statusCode),
        detail: fields.join(" "),
      });
    });
    next();
  };
}
