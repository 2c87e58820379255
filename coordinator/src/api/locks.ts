import express, { type Router } from "express";
import { describeLock, type AppLock, type LockStore } from "../store/locks.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { appParam } from "./deployments.js";
import { ApiError } from "./errors.js";

export interface LockApiDeps {
  tokens: TokenStore;
  locks: LockStore;
}

/** The most characters a lock's reason keeps: a sentence for whoever it refuses, not a document. */
export const MAX_LOCK_REASON_CHARS = 500;

/** A lock as the API and `--json` show it. */
export function lockView(lock: AppLock) {
  return { app: lock.app, holder: lock.holder, reason: lock.reason, acquiredAt: new Date(lock.acquiredAt).toISOString() };
}
export type LockView = ReturnType<typeof lockView>;

function reasonOf(body: unknown): string {
  const reason = (body as { reason?: unknown } | undefined)?.reason;
  if (typeof reason !== "string" || reason.trim() === "") throw new ApiError(400, "ERR_BAD_REQUEST", '"reason" must say why the app is locked (cutover lock acquire APP -m "why")');
  if (reason.length > MAX_LOCK_REASON_CHARS) throw new ApiError(400, "ERR_BAD_REQUEST", `"reason" is ${reason.length} characters; at most ${MAX_LOCK_REASON_CHARS}`);
  // Control characters and bidirectional overrides: the reason is shown to whoever the lock refuses.
  if (/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/.test(reason)) throw new ApiError(400, "ERR_BAD_REQUEST", '"reason" must be one line of printable text');
  return reason.trim();
}

/**
 * App locks: a deploy token holds an app against deploys and rollbacks (the
 * running deployment, and pause / resume / promote / abort, are not held);
 * any deploy token may release it. Every acquire and release is audited; a
 * release names the lock it removed.
 */
export function lockRoutes(deps: LockApiDeps): Router {
  const { tokens, locks } = deps;
  const router = express.Router();

  router.get("/v1/locks", requireRole(tokens, "read"), (_request, response) => {
    response.json(locks.list().map(lockView));
  });

  router.get("/v1/apps/:app/lock", requireRole(tokens, "read"), (request, response) => {
    const lock = locks.get(appParam(request));
    response.json(lock && lockView(lock));
  });

  router.post("/v1/apps/:app/lock", requireRole(tokens, "deploy"), (request, response) => {
    const app = appParam(request);
    const result = locks.acquire(app, request.token!.name, reasonOf(request.body));
    if (!result.acquired) throw new ApiError(423, "ERR_APP_LOCKED", `${describeLock(result.held)}; \`cutover lock release ${app}\` frees it`);
    response.status(201).json(lockView(result.lock));
  });

  router.delete("/v1/apps/:app/lock", requireRole(tokens, "deploy"), (request, response) => {
    const app = appParam(request);
    const released = locks.release(app);
    if (!released) throw new ApiError(404, "ERR_NOT_LOCKED", `${app} is not locked`);
    response.locals.auditDetail = `released=${JSON.stringify(lockView(released))}`;
    response.json(lockView(released));
  });

  return router;
}
