import express, { type Router } from "express";
import { InstallerFileMissing, type InstallerSource } from "../installer/agent-bundle.js";
import { ApiError } from "./errors.js";

/** Headers that carry the bundle's hash and signature beside its bytes. */
export const BUNDLE_SHA256_HEADER = "x-cutover-sha256";
export const BUNDLE_SIGNATURE_HEADER = "x-cutover-signature";

function served<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof InstallerFileMissing) throw new ApiError(404, error.code, error.message);
    throw error;
  }
}

/**
 * What a host needs to install the agent, without a token: install.sh, the one-file agent
 * with its sha256 and the coordinator's signature, and the manifest saying both (plus the
 * coordinator's public key and TLS pins, all public). Nothing here is secret or changes state;
 * a host checks the bundle against the key its pasted join command carries, not this answer.
 */
export function installerRoutes(deps: { installer: InstallerSource }): Router {
  const router = express.Router();
  router.get("/install.sh", (_request, response) => {
    const script = served(() => deps.installer.installer());
    response.type("text/x-shellscript").setHeader("cache-control", "no-store");
    response.send(script);
  });
  router.get("/v1/agent/bundle", (_request, response) => {
    // One snapshot: headers and body describe the same bytes even if the file is rebuilt meanwhile.
    const bundle = served(() => deps.installer.bundle());
    response.type("text/javascript").setHeader("cache-control", "no-store");
    response.setHeader(BUNDLE_SHA256_HEADER, bundle.sha256);
    response.setHeader(BUNDLE_SIGNATURE_HEADER, bundle.signature);
    response.send(bundle.bytes);
  });
  router.get("/v1/agent/bundle/manifest", (_request, response) => {
    response.json(served(() => deps.installer.manifest()));
  });
  return router;
}
