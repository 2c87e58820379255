import express, { type Request, type Router } from "express";
import type { SecretInfo, SecretStore } from "../store/secrets.js";
import type { TokenStore } from "../store/tokens.js";
import { requireRole } from "./auth.js";
import { appParam } from "./deployments.js";
import { ApiError } from "./errors.js";

export interface SecretApiDeps {
  tokens: TokenStore;
  secrets: SecretStore;
}

/** A secret's name is the name of the environment variable a spec may give it as. */
export const SECRET_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SECRET_NAME_RULE = "letters, digits and '_', not starting with a digit (an environment variable name)";
/** The most bytes one secret may hold: an environment value, not a file (Linux takes at most 128 KiB per string). */
export const MAX_SECRET_BYTES = 64 * 1024;

/** A secret as the API and `--json` show it: never its value. */
export function secretView(secret: SecretInfo) {
  return { app: secret.app, name: secret.name, setAt: new Date(secret.setAt).toISOString(), setBy: secret.setBy };
}
export type SecretView = ReturnType<typeof secretView>;

function nameParam(request: Request): string {
  const name = String(request.params.name);
  if (!SECRET_NAME.test(name)) throw new ApiError(400, "ERR_BAD_REQUEST", `a secret's name must be ${SECRET_NAME_RULE}; got ${JSON.stringify(name.slice(0, 64))}`);
  return name;
}

/** The body's value; what is wrong with it is said without repeating any of it. */
function valueOf(body: unknown): string {
  const value = (body as { value?: unknown } | undefined)?.value;
  if (typeof value !== "string") throw new ApiError(400, "ERR_BAD_REQUEST", '"value" must be a string');
  if (value === "") throw new ApiError(400, "ERR_BAD_REQUEST", "the value is empty; `cutover secret rm` removes a secret");
  if (value.includes("\0")) throw new ApiError(400, "ERR_BAD_REQUEST", "the value holds a NUL byte, which no environment variable can carry");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_SECRET_BYTES) throw new ApiError(400, "ERR_BAD_REQUEST", `the value is ${bytes} bytes; at most ${MAX_SECRET_BYTES}`);
  return value;
}

/**
 * App secrets: a deploy token sets and removes them; a read token lists their
 * names (a name says what an app needs, not what it is: the values leave the
 * coordinator only inside Deploy and Rollback commands to the app's hosts). No
 * route answers a value. Sets and removals are audited by the trail with the
 * caller, the app and the name (the path); the body, which holds the value, is
 * not.
 */
export function secretRoutes(deps: SecretApiDeps): Router {
  const { tokens, secrets } = deps;
  const router = express.Router();

  router.get("/v1/apps/:app/secrets", requireRole(tokens, "read"), (request, response) => {
    response.json(secrets.list(appParam(request)).map(secretView));
  });

  router.put("/v1/apps/:app/secrets/:name", requireRole(tokens, "deploy"), (request, response) => {
    const app = appParam(request);
    const name = nameParam(request);
    const value = valueOf(request.body);
    response.json(secretView(secrets.set(app, name, value, request.token!.name)));
  });

  router.delete("/v1/apps/:app/secrets/:name", requireRole(tokens, "deploy"), (request, response) => {
    const app = appParam(request);
    const name = nameParam(request);
    const removed = secrets.remove(app, name);
    if (!removed) throw new ApiError(404, "ERR_SECRET_UNKNOWN", `${app} has no secret ${name} (\`cutover secret list ${app}\` shows the names set)`);
    response.json(secretView(removed));
  });

  return router;
}
