import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { RequestHandler } from "express";
import type { Logger } from "@cutover/log";
import { remoteAddress } from "./audit-trail.js";

/** What the forwarder needs to know of the cluster. */
export interface LeaderLocator {
  isLeader(): boolean;
  /** The leader's API URL when another member leads. */
  leaderApiUrl(): string | undefined;
  /** With --tls every member serves the same certificate: the leader must present this one. */
  tlsCertificate?: string;
}

/** Answered by every member itself: who leads, whether it is up, and public installer files. */
const ANSWERED_BY_EVERY_MEMBER = [/^\/v1\/server\/status$/, /^\/v1\/health$/, /^\/install\.sh$/, /^\/v1\/agent\/bundle(\/manifest)?$/, /^\/ui(\/|$)/];

/**
 * Reads a follower serves from the shared store, leader or none: what the store holds and no
 * live state does (sessions, liveness, rollouts in memory, event listeners are the leader's).
 */
const READS_FROM_THE_STORE = [
  /^\/v1\/deployments\/[^/]+$/,
  /^\/v1\/apps$/,
  /^\/v1\/apps\/[^/]+\/(history|lock|secrets)$/,
  /^\/v1\/locks$/,
  /^\/v1\/tokens$/,
  /^\/v1\/audit$/,
  /^\/v1\/whoami$/,
];

function answeredHere(method: string, path: string): boolean {
  if (ANSWERED_BY_EVERY_MEMBER.some((pattern) => pattern.test(path))) return true;
  return (method === "GET" || method === "HEAD") && READS_FROM_THE_STORE.some((pattern) => pattern.test(path));
}

/**
 * On a follower, reads of the store are served here; every other call goes to the leader, as
 * it came, and the leader's answer comes back as it went (event streams included): live state
 * is the leader's, and only the leader may write. So the CLI can be pointed at any member.
 */
export function forwardToLeader(cluster: LeaderLocator, log: Logger): RequestHandler {
  return (request, response, next) => {
    if (cluster.isLeader() || answeredHere(request.method, request.path)) return next();
    const leader = cluster.leaderApiUrl();
    if (!leader) {
      response.status(503).setHeader("retry-after", "2");
      response.json({ error: { code: "ERR_NO_LEADER", message: "no coordinator leads right now (a takeover waits for the old lease to expire): try again in a few seconds; `cutover server status` shows the members" } });
      return;
    }
    const target = new URL(request.originalUrl, leader);
    const headers = { ...request.headers, host: target.host, "x-forwarded-for": remoteAddress(request) };
    const options = { method: request.method, headers };
    const answer = (upstream: IncomingMessage) => {
      response.writeHead(upstream.statusCode ?? 502, upstream.headers);
      upstream.pipe(response);
    };
    const upstream =
      target.protocol === "https:"
        ? httpsRequest(target, { ...options, ca: cluster.tlsCertificate, checkServerIdentity: () => undefined }, answer)
        : httpRequest(target, options, answer);
    upstream.on("error", (error) => {
      log.warn("cannot forward an API call to the leader", { leader, path: request.path, error: error.message });
      if (response.headersSent) return void response.destroy();
      response.status(502).json({ error: { code: "ERR_LEADER_UNREACHABLE", message: `this coordinator follows ${leader}, which does not answer: ${error.message}; try again in a few seconds` } });
    });
    // A caller gone away (the CLI's Ctrl-C on a followed event stream) ends the forwarded call too.
    response.on("close", () => upstream.destroy());
    request.pipe(upstream);
  };
}
