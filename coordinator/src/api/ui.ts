import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import express, { type Router } from "express";

/** Where the dashboard's build (coordinator/src/ui/build.mjs) writes its static files. */
export const UI_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "ui");

/**
 * No inline script or style, nothing from another origin, never in a frame:
 * even a string that slipped past the framework's escaping could not run.
 */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * The dashboard at /ui/: static files, served without a token (they hold no
 * data); every call they make to /v1 carries the token the operator signed in
 * with. A coordinator run from the one-file bundle has no dashboard build and
 * says so.
 */
export function uiRoutes(dir = UI_DIR): Router {
  const router = express.Router();
  router.use("/ui", (_request, response, next) => {
    response.setHeader("content-security-policy", UI_CONTENT_SECURITY_POLICY);
    response.setHeader("x-content-type-options", "nosniff");
    response.setHeader("x-frame-options", "DENY");
    response.setHeader("referrer-policy", "no-referrer");
    response.setHeader("cache-control", "no-cache");
    next();
  });
  router.get("/ui", (request, response, next) => {
    // express.static redirects /ui to /ui/ itself; without a build there is nothing to redirect to.
    if (!existsSync(join(dir, "index.html"))) {
      response.status(404).type("text/plain").send("this coordinator has no dashboard build: run `npm run build` in the cutover checkout it runs from (the one-file bundle does not carry the dashboard)\n");
      return;
    }
    next();
  });
  router.use("/ui", express.static(dir, { index: "index.html", redirect: true, dotfiles: "deny" }));
  // Past the files: not found here, rather than the API's token-guarded 404.
  router.use("/ui", (_request, response) => {
    response.status(404).type("text/plain").send("no such file in the dashboard\n");
  });
  return router;
}
