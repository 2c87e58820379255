import test from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { UI_CONTENT_SECURITY_POLICY, uiRoutes } from "./ui.js";

async function serve(t: { teardown(fn: () => void): void }, dir: string): Promise<string> {
  const app = express();
  app.use(uiRoutes(dir));
  app.use((_request, response) => void response.status(401).json({ error: { code: "ERR_UNAUTHENTICATED" } }));
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "cutover-ui-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("the dashboard's files are served under /ui/ with a strict CSP, nosniff and no framing; /ui goes to /ui/", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>cutover</title>");
  writeFileSync(join(dir, "app.js"), "export {};");
  const url = await serve(t, dir);

  const page = await fetch(`${url}/ui/`);
  t.is(page.status, 200);
  t.is(await page.text(), "<!doctype html><title>cutover</title>");
  t.is(page.headers.get("content-security-policy"), UI_CONTENT_SECURITY_POLICY);
  t.regex(UI_CONTENT_SECURITY_POLICY, /^default-src 'self'; script-src 'self';/);
  t.notRegex(UI_CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval/);
  t.regex(UI_CONTENT_SECURITY_POLICY, /frame-ancestors 'none'/);
  t.is(page.headers.get("x-content-type-options"), "nosniff");
  t.is(page.headers.get("x-frame-options"), "DENY");

  const script = await fetch(`${url}/ui/app.js`);
  t.regex(script.headers.get("content-type") ?? "", /javascript/);

  const bare = await fetch(`${url}/ui`, { redirect: "manual" });
  t.is(bare.status, 301);
  t.is(bare.headers.get("location"), "/ui/");

  const missing = await fetch(`${url}/ui/nothing.js`);
  t.is(missing.status, 404, "a missing file is the dashboard's 404, not the API's 401");
  t.is(missing.headers.get("content-security-policy"), UI_CONTENT_SECURITY_POLICY);
  t.is((await fetch(`${url}/ui/..%2f..%2fetc%2fpasswd`)).status, 404);
  t.is((await fetch(`${url}/v1/hosts`)).status, 401, "the API behind it is untouched");
});

test("a coordinator without a dashboard build says so at /ui", async (t) => {
  const url = await serve(t, join(tempDir(t), "absent"));
  const answer = await fetch(`${url}/ui`);
  t.is(answer.status, 404);
  t.regex(await answer.text(), /no dashboard build: run `npm run build`/);
});
