import express, { type Router } from "express";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";

/** What `GET /v1/whoami` answers: the caller's token name and role (the dashboard shows only the actions the role allows). */
export interface WhoamiView {
  name: string;
  role: string;
}

export function whoamiRoutes(deps: { tokens: TokenStore }): Router {
  const router = express.Router();
  router.get("/v1/whoami", requireRole(deps.tokens, "read"), (request, response) => {
    response.json({ name: request.token!.name, role: request.token!.role } satisfies WhoamiView);
  });
  return router;
}
