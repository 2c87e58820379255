import test, { type ExecutionContext } from "ava";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { writeExampleSpec } from "./harness/app-spec.js";
import { startFleet, type CoordinatorProcess, type Fleet } from "./harness/fleet.js";
import { repoRoot } from "./harness/processes.js";
import { openSignedCommand, type cutover } from "@cutover/protocol";
import { newKey, RawAgent } from "./harness/raw-agent.js";
import { getThroughProxy } from "./harness/through-proxy.js";

// The dashboard in a real browser: Debian's chromium, headless, driven by puppeteer-core,
// against a real coordinator, real agents and their nginx.

const CHROMIUM = process.env.CUTOVER_CHROMIUM ?? "/usr/bin/chromium";
const PORTS = { listen: 8080, blue: 7001, green: 7002 };
const LB_LISTEN = 8090;
/** How long the page may take to show what the coordinator knows: a few heartbeats and polls, with room for a busy machine. */
const SHOWN_WITHIN_MS = 30_000;
/** A deploy of three hosts one at a time, each booting slowly on purpose. */
const DEPLOYED_WITHIN_MS = 120_000;
/** `CUTOVER_SCREENSHOTS=1` writes the README's screenshots; a normal run leaves the tree alone. */
const SCREENSHOTS = process.env.CUTOVER_SCREENSHOTS === "1" ? join(repoRoot, "docs", "screenshots") : null;

// What the callbacks that run in the page see (this project is compiled without the DOM library).
interface PageElement {
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
  textContent: string | null;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>; cookie: string };
declare const window: { location: { hash: string }; __injected?: boolean };
declare const sessionStorage: { getItem(key: string): string | null };
declare const localStorage: { length: number };

// One browser for the file, each test in its own context (its own sessionStorage), closed when it ends.
let browser: Browser | undefined;
test.before(async () => {
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in CI and here: Chromium's sandbox needs an unprivileged user.
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
});
test.after.always(async () => {
  await browser?.close();
});

/** A fresh browser context and page; what the page logs as an error (a CSP refusal, an exception) is collected. */
async function newPage(t: ExecutionContext): Promise<{ page: Page; errors: string[] }> {
  const context = await browser!.createBrowserContext();
  t.teardown(() => context.close());
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 760 });
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`page error: ${String(error)}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()} ${message.location().url ?? ""}`);
  });
  return { page, errors };
}

async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) as `${string}.png` });
}

async function signInWithForm(page: Page, coordinator: CoordinatorProcess, token: string): Promise<void> {
  await page.goto(`${coordinator.url}/ui/`);
  await page.waitForSelector("main.sign-in input[name=token]");
  await page.type("main.sign-in input[name=token]", token);
  await page.click("main.sign-in button[type=submit]");
  await page.waitForSelector("[data-page=fleet]");
}

async function apiToken(coordinator: CoordinatorProcess, role: "read" | "deploy", name: string): Promise<string> {
  const created = await coordinator.cli(["token", "create", "--api", "--role", role, "--name", name]);
  if (created.exitCode !== 0) throw new Error(`token create: ${created.stderr}`);
  return created.stdout.trim();
}

/** The link `cutover ui` prints for this token. */
async function dashboardLink(coordinator: CoordinatorProcess, token: string): Promise<string> {
  const printed = await coordinator.cli(["ui"], token);
  if (printed.exitCode !== 0) throw new Error(`cutover ui: ${printed.stderr}`);
  return printed.stdout.trim();
}

interface HostRow {
  name: string;
  state: string;
  labels: string;
  agent: string;
  cpu: string;
  memory: string;
  disk: string;
  load: string;
}

function hostRows(page: Page): Promise<HostRow[]> {
  return page.$$eval("[data-page=fleet] tr[data-host]", (rows) =>
    rows.map((row) => {
      const cell = (column: string) => row.querySelector(`[data-col=${column}]`)?.textContent?.trim() ?? "";
      return { name: row.getAttribute("data-host")!, state: cell("state"), labels: cell("labels"), agent: cell("agent"), cpu: cell("cpu"), memory: cell("memory"), disk: cell("disk"), load: cell("load") };
    }),
  );
}

async function deployDetached(fleet: Fleet, spec: string, release: string): Promise<string> {
  const started = await fleet.coordinator.cliJson<{ id: string }>(["deploy", spec, "--release", release, "--detach"]);
  if (started.exitCode !== 0) throw new Error(`deploy --detach: ${started.stderr}`);
  return started.json.id;
}

test.serial("signed in with a token, the fleet page lists a 3-host fleet with state, labels, agent and resources, sorted, filtered and live; a deploy started from the CLI shows live progress until it succeeds", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, labels: (i) => `role=geoip,zone=${i < 2 ? "a" : "b"}` });
  const { page, errors } = await newPage(t);

  const response = await page.goto(`${fleet.coordinator.url}/ui/`);
  const headers = response!.headers();
  t.regex(headers["content-security-policy"] ?? "", /default-src 'self'/);
  t.regex(headers["content-security-policy"] ?? "", /script-src 'self'(;|$)/, "no inline script");
  t.regex(headers["content-security-policy"] ?? "", /frame-ancestors 'none'/);
  t.is(headers["x-content-type-options"], "nosniff");

  // A wrong token is refused on the sign-in page, saying why.
  await page.waitForSelector("main.sign-in input[name=token]");
  await page.type("main.sign-in input[name=token]", "cta_not-a-token");
  await page.click("main.sign-in button[type=submit]");
  await page.waitForSelector("main.sign-in .error");
  t.regex(await page.$eval("main.sign-in .error", (e) => e.textContent ?? ""), /unknown or revoked/);
  t.true(errors.length === 1 && /401.*\/v1\/whoami/.test(errors[0]!), `the browser logs the refused sign-in, and only it: ${errors.join("; ")}`);
  errors.length = 0;
  await signInWithForm(page, fleet.coordinator, fleet.coordinator.adminToken);
  t.is(await page.$eval(".who", (e) => e.textContent), "admin (admin)");
  t.is(await page.evaluate(() => localStorage.length), 0, "the token is not in localStorage");
  t.is(await page.evaluate(() => document.cookie), "", "nor in a cookie");

  // Every host, each with the figures its heartbeats report.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll("[data-page=fleet] tr[data-host]")];
    return rows.length === 3 && rows.every((r) => r.querySelector("[data-col=memory] .meter") && r.querySelector("[data-col=disk] .meter"));
  }, { timeout: SHOWN_WITHIN_MS });
  const listed = (await fleet.coordinator.cliJson<{ name: string; agentVersion: string; resources: { memTotalBytes: number } }[]>(["hosts"])).json;
  const rows = await hostRows(page);
  t.deepEqual(rows.map((r) => [r.name, r.state, r.labels]), [
    ["web-1", "online", "role=geoipzone=a"],
    ["web-2", "online", "role=geoipzone=a"],
    ["web-3", "online", "role=geoipzone=b"],
  ]);
  for (const row of rows) {
    t.is(row.agent, listed.find((h) => h.name === row.name)!.agentVersion, `${row.name}: the agent version it reports`);
    t.regex(row.cpu, /^\d+ % of \d+$/, `${row.name}: CPU`);
    t.regex(row.memory, /^[\d.]+ [KMGT]?i?B \/ [\d.]+ [KMGT]iB$/, `${row.name}: memory free of total`);
    t.regex(row.disk, /^[\d.]+ [KMGT]?i?B \/ [\d.]+ [KMGT]iB$/, `${row.name}: disk free of total`);
    t.regex(row.load, /^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/, `${row.name}: load averages`);
  }
  await screenshot(page, "fleet");

  await page.click("button[data-sort=name]");
  t.deepEqual((await hostRows(page)).map((r) => r.name), ["web-3", "web-2", "web-1"], "sorted by name, descending on the second click");
  await page.type("input[name=label-filter]", "zone=b");
  t.deepEqual((await hostRows(page)).map((r) => r.name), ["web-3"], "filtered by label");
  await page.$eval("input[name=label-filter]", (input) => {
    (input as unknown as { value: string }).value = "";
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
  t.is((await hostRows(page)).length, 3);

  // A deploy from the CLI, followed on the deployments page as it runs.
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, batch: 1, appArgs: ["--slow-start", "1500"] });
  const id = await deployDetached(fleet, spec, "v1");
  await page.click("a[data-nav=deployments]");
  await page.waitForSelector(`[data-page=deployments] tr[data-deployment="${id}"] a`, { timeout: SHOWN_WITHIN_MS });
  await page.click(`[data-page=deployments] tr[data-deployment="${id}"] a`);
  // Live: while it runs, one host has gone through and another is on its way, each step on the timeline.
  await page.waitForFunction(
    () => {
      const view = document.querySelector("[data-page=deployment]");
      return view?.getAttribute("data-state") === "running" && view.querySelector("tr[data-outcome=succeeded]") && view.querySelector("tr[data-outcome=running]") && view.querySelector(".lane .step");
    },
    { timeout: DEPLOYED_WITHIN_MS },
  );
  await screenshot(page, "deployment");
  // Pause stops it before its next step; resume carries on. Each asks first.
  await confirmAction(page, "pause", /Pause the bluegreen deployment of geoip v1 before its next step/);
  await page.waitForSelector("[data-page=deployment][data-state=paused] button[data-action=resume]", { timeout: SHOWN_WITHIN_MS });
  t.is(await page.$("button[data-action=promote]"), null, "no promote on a deployment that is not a canary");
  await confirmAction(page, "resume", /Resume the deployment of geoip v1/);
  const runningEvents = await page.$eval("ol.events", (list) => Number(list.getAttribute("data-count")));
  t.true(runningEvents > 0, "events arrived while it ran");
  await page.waitForSelector("[data-page=deployment][data-state=succeeded]", { timeout: DEPLOYED_WITHIN_MS });
  // The page's last word is the record's: every host through.
  await page.waitForFunction(() => document.querySelectorAll("[data-page=deployment] table tr[data-outcome=succeeded]").length === 3, { timeout: SHOWN_WITHIN_MS });
  t.true((await page.$eval("ol.events", (list) => Number(list.getAttribute("data-count")))) > runningEvents, "events kept arriving until the end");
  t.true((await page.$$eval("ol.events li .event-message", (items) => items.map((i) => i.textContent ?? ""))).some((m) => /v1 live on blue/.test(m)));
  const status = (await fleet.coordinator.cliJson<{ hosts: { release: string }[] }>(["status", "geoip"])).json;
  t.deepEqual(status.hosts.map((h) => h.release), ["v1", "v1", "v1"], "what the page said is what the fleet runs");

  // The apps page: each host's live color, release and health, and what it keeps.
  await page.click("a[data-nav=apps]");
  await page.waitForFunction(() => document.querySelectorAll("[data-page=apps] article[data-app=geoip] tr[data-host]").length === 3, { timeout: SHOWN_WITHIN_MS });
  const appRows = await page.$$eval("[data-page=apps] article[data-app=geoip] tr[data-host]", (rows) => rows.map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent?.trim())));
  t.deepEqual(appRows.map((cells) => cells.slice(0, 5)), [
    ["web-1", "online", "blue", "v1", "healthy"],
    ["web-2", "online", "blue", "v1", "healthy"],
    ["web-3", "online", "blue", "v1", "healthy"],
  ]);
  await screenshot(page, "apps");
  // The audit trail (admin): the deploy, as the CLI's token.
  await page.click("a[data-nav=audit]");
  await page.waitForSelector("[data-page=audit] tbody tr", { timeout: SHOWN_WITHIN_MS });
  const audited = await page.$$eval("[data-page=audit] tbody tr", (rows) => rows.map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent ?? "")));
  t.true(audited.some((cells) => cells[1] === "admin" && cells[2] === "POST /v1/deployments" && cells[3] === "geoip" && cells[4] === "201"), "the deploy is in the audit trail");

  // The fleet page stays live: a host whose agent dies is shown unreachable without a reload.
  await page.click("a[data-nav=fleet]");
  await page.waitForSelector("[data-page=fleet] tr[data-host=web-3][data-state=online]");
  await fleet.agents[2]!.process.kill("SIGKILL");
  await page.waitForSelector("[data-page=fleet] tr[data-host=web-3][data-state=unreachable]", { timeout: SHOWN_WITHIN_MS });
  t.deepEqual(errors, [], "no CSP refusal or script error on any page");
});

test.serial("a read token signed in from a `cutover ui` link sees no action buttons and its forged POST is refused 403; host-supplied HTML is shown as text", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const spec = writeExampleSpec(fleet.dir, PORTS);
  const v1 = await fleet.coordinator.cliJson<{ id: string; status: string }>(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  const [deployment] = (await fleet.coordinator.cliJson<{ id: string }[]>(["history", "geoip"])).json;

  // A host that says its agent version is HTML.
  const HTML_VERSION = `<b>1.0</b><img src="x" onerror="window.__injected = true">`;
  const rogue = await RawAgent.connect(fleet.coordinator.url);
  t.teardown(() => rogue.close());
  await rogue.handshake({ name: "rogue-1", key: newKey(), token: await fleet.coordinator.enrollmentToken({ labels: "role=other", address: "127.0.0.1" }), agentVersion: HTML_VERSION });

  const readToken = await apiToken(fleet.coordinator, "read", "viewer");
  const link = await dashboardLink(fleet.coordinator, readToken);
  t.true(link.startsWith(`${fleet.coordinator.url}/ui/#token=`), link);
  const { page, errors } = await newPage(t);
  const served: string[] = [];
  page.on("request", (request) => served.push(request.url()));
  await page.goto(link);
  await page.waitForSelector("[data-page=fleet]");
  t.is(await page.evaluate(() => window.location.hash), "#/fleet", "the token is taken out of the address bar");
  // What goes on the wire is the URL without its fragment.
  t.false(served.some((url) => url.split("#")[0]!.includes(encodeURIComponent(readToken)) || url.split("#")[0]!.includes(readToken)), "no request carried the token in its URL");
  t.is(await page.evaluate(() => sessionStorage.getItem("cutover.token")), readToken);
  t.is(await page.$eval(".who", (e) => e.textContent), "viewer (read)");
  t.deepEqual(await page.$$eval("nav.top a", (links) => links.map((a) => a.textContent)), ["Fleet", "Apps", "Deployments"], "no audit page for a read token");

  // Host-supplied text is text: the row shows the literal markup, and no element was made of it.
  await page.waitForSelector("[data-page=fleet] tr[data-host=rogue-1]", { timeout: SHOWN_WITHIN_MS });
  t.is(await page.$eval("tr[data-host=rogue-1] [data-col=agent]", (cell) => cell.textContent), HTML_VERSION);
  t.true((await page.$eval("tr[data-host=rogue-1] [data-col=agent]", (cell) => cell.textContent ?? "")).includes("<b>"));
  t.is(await page.$$eval("[data-page=fleet] b, [data-page=fleet] img", (found) => found.length), 0, "no element was created from it");
  t.is(await page.evaluate(() => window.__injected), undefined);

  // The finished deployment and the app: nothing to press.
  await page.goto(`${fleet.coordinator.url}/ui/#/deployments/${deployment!.id}`);
  await page.waitForSelector("[data-page=deployment][data-state=succeeded]", { timeout: SHOWN_WITHIN_MS });
  t.is(await page.$$eval("[data-action]", (buttons) => buttons.length), 0, "no action button on the deployment");
  await page.click("a[data-nav=apps]");
  await page.waitForSelector("[data-page=apps] article[data-app=geoip] tr[data-host=web-1]", { timeout: SHOWN_WITHIN_MS });
  t.is(await page.$$eval("[data-action]", (buttons) => buttons.length), 0, "no action button on the app");

  // The page's own token, forging what a button would send: the API refuses it.
  const forged = await page.evaluate(async () => {
    const response = await fetch("/v1/apps/geoip/rollback", { method: "POST", headers: { authorization: `Bearer ${sessionStorage.getItem("cutover.token")}`, "content-type": "application/json" }, body: "{}" });
    return { status: response.status, body: (await response.json()) as { error: { code: string } } };
  });
  t.is(forged.status, 403);
  t.is(forged.body.error.code, "ERR_FORBIDDEN");
  t.is((await fleet.coordinator.cliJson<unknown[]>(["history", "geoip"])).json.length, 1, "no rollback was started");
  t.is((await getThroughProxy(fleet.addresses[0]!, PORTS.listen)).version, "v1");
  t.deepEqual(errors.filter((e) => !/403/.test(e)), [], "no CSP refusal or script error (the forged call's 403 aside)");

  // The same page with a deploy token does offer the rollback: the read token's lack of one is its role.
  const deployer = await newPage(t);
  await deployer.page.goto(await dashboardLink(fleet.coordinator, await apiToken(fleet.coordinator, "deploy", "deployer")));
  await deployer.page.waitForSelector("[data-page=fleet]");
  await deployer.page.goto(`${fleet.coordinator.url}/ui/#/deployments/${deployment!.id}`);
  await deployer.page.waitForSelector("[data-page=deployment][data-state=succeeded] button[data-action=rollback]", { timeout: SHOWN_WITHIN_MS });
});

const CANARY = { type: "canary", canary: { hosts: 1, weight: 30, cookie: "cutover_canary" } };

/** Presses the action's button, checks the dialog names what will happen, and confirms it. */
async function confirmAction(page: Page, action: string, consequence: RegExp): Promise<string> {
  await page.click(`button[data-action=${action}]`);
  await page.waitForSelector(`dialog.confirm[open] button[data-confirm=${action}]`);
  const said = await page.$eval("dialog.confirm .consequence", (p) => p.textContent ?? "");
  if (!consequence.test(said)) throw new Error(`the ${action} dialog says "${said}", not ${consequence}`);
  await page.click(`dialog.confirm button[data-confirm=${action}]`);
  await page.waitForSelector("dialog.confirm:not([open])", { timeout: SHOWN_WITHIN_MS });
  return said;
}

async function versionsThroughLb(fleet: Fleet, count = 20): Promise<Record<string, number>> {
  const seen: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const { version } = await getThroughProxy(fleet.lbAddresses[0]!, LB_LISTEN);
    seen[String(version)] = (seen[String(version)] ?? 0) + 1;
  }
  return seen;
}

test.serial("canary: promote and abort from the dashboard, each confirmed in a dialog naming what will happen; cancel sends nothing", async (t) => {
  const fleet = await startFleet(t, { hosts: 3, lbHosts: 1 });
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, lbListen: LB_LISTEN, strategy: CANARY });
  const v1 = await fleet.coordinator.cliJson<{ status: string }>(["deploy", spec, "--release", "v1"]);
  t.is(v1.exitCode, 0, v1.stderr);
  const { page, errors } = await newPage(t);
  await page.goto(await dashboardLink(fleet.coordinator, await apiToken(fleet.coordinator, "deploy", "deployer")));
  await page.waitForSelector("[data-page=fleet]");

  const v2 = await deployDetached(fleet, spec, "v2");
  await page.goto(`${fleet.coordinator.url}/ui/#/deployments/${v2}`);
  await page.waitForSelector("[data-page=deployment][data-state=paused] button[data-action=promote]", { timeout: DEPLOYED_WITHIN_MS });
  t.is(await page.$("button[data-action=resume]"), null, "a canary waiting for promotion is promoted, not resumed (the API would refuse)");
  await screenshot(page, "canary");
  await page.click("button[data-action=promote]");
  await page.waitForSelector("dialog.confirm[open] button.cancel");
  await page.click("dialog.confirm button.cancel");
  await page.waitForSelector("dialog.confirm:not([open])");
  const stillPaused = (await fleet.coordinator.cliJson<{ deployment: { state: string } | null }>(["status", "geoip"])).json;
  t.is(stillPaused.deployment?.state, "paused", "a cancelled dialog sent nothing");
  await confirmAction(page, "promote", /Promote the canary: deploy geoip v2 to the rest of the fleet/);
  await page.waitForSelector("[data-page=deployment][data-state=succeeded]", { timeout: DEPLOYED_WITHIN_MS });
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 }, "promoted: the whole fleet serves v2");

  const v3 = await deployDetached(fleet, spec, "v3");
  await page.goto(`${fleet.coordinator.url}/ui/#/deployments/${v3}`);
  await page.waitForSelector("[data-page=deployment][data-state=paused] button[data-action=abort]", { timeout: DEPLOYED_WITHIN_MS });
  await confirmAction(page, "abort", /roll back every host it changed/);
  await page.waitForSelector("[data-page=deployment][data-state=rolled_back]", { timeout: DEPLOYED_WITHIN_MS });
  t.deepEqual(await versionsThroughLb(fleet), { v2: 20 }, "aborted: the canary is back on v2 and out of the weights");
  const audit = (await fleet.coordinator.cliJson<{ actor: string; action: string; outcome: string }[]>(["audit"])).json;
  t.true(audit.some((e) => e.actor === "deployer" && e.action === "POST /v1/apps/geoip/promote" && e.outcome === "200"), "the promote is audited as the dashboard's token");
  t.true(audit.some((e) => e.actor === "deployer" && e.action === "POST /v1/apps/geoip/abort" && e.outcome === "200"));
  t.deepEqual(errors, []);
});

const GIB = 1024 ** 3;

test.serial("an event line and an error message a host sends with HTML in them are shown as text on the deployment page", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  // A host that answers every deploy with a progress line and a failure carrying markup.
  const HTML_EVENT = `<b>preflight</b> <img src="x" onerror="window.__injected = true">`;
  const HTML_ERROR = `<b>disk</b> <script>window.__injected = true</script>`;
  const rogue = await RawAgent.connect(fleet.coordinator.url);
  t.teardown(() => rogue.close());
  rogue.answerPings();
  rogue.socket.on("message", () => {
    const outer = rogue.received.at(-1)?.command;
    if (!outer) return;
    const command = outer.signed?.length ? openSignedCommand(outer as cutover.v1.Command) : outer;
    if (!command.deploy) return;
    rogue.sendEnvelope({ event: { commandId: command.commandId, atUnixMs: Date.now(), kind: "step", app: "rogue", color: "blue", message: HTML_EVENT } });
    rogue.sendEnvelope({ commandResult: { commandId: command.commandId, status: 2, errorCode: "ERR_PREFLIGHT", message: HTML_ERROR } });
  });
  await rogue.handshake({
    name: "rogue-1",
    key: newKey(),
    token: await fleet.coordinator.enrollmentToken({ labels: "role=rogue", address: "127.0.0.1" }),
    resources: { cpuLoadPercent: 1, memTotalBytes: 16 * GIB, memAvailableBytes: 8 * GIB, disks: [{ path: "/", freeBytes: 50 * GIB, totalBytes: 100 * GIB }], load1: 0.1, load5: 0.1, load15: 0.1, cpuCount: 4, sampledAtUnixMs: Date.now() },
  });
  const spec = writeExampleSpec(fleet.dir, { ...PORTS, app: "rogue", selector: { role: "rogue" } });
  const id = await deployDetached(fleet, spec, "v1");

  const { page } = await newPage(t);
  await page.goto(await dashboardLink(fleet.coordinator, fleet.coordinator.adminToken));
  await page.waitForSelector("[data-page=fleet]");
  await page.goto(`${fleet.coordinator.url}/ui/#/deployments/${id}`);
  // One host failed, more than max_failures=0: the deployment rolls back what it changed (nothing).
  await page.waitForSelector("[data-page=deployment][data-state=rolled_back] tr[data-host=rogue-1][data-outcome=failed]", { timeout: DEPLOYED_WITHIN_MS });
  const lines = await page.$$eval("[data-page=deployment] ol.events li .event-message", (items) => items.map((i) => i.textContent ?? ""));
  t.true(lines.includes(HTML_EVENT), `the event line as sent: ${JSON.stringify(lines)}`);
  t.true(lines.some((l) => l.includes(HTML_ERROR)), "the failure as sent");
  t.true((await page.$eval("tr[data-host=rogue-1] td.error-text", (cell) => cell.textContent ?? "")).includes(HTML_ERROR), "the host's error as text");
  t.is(await page.$$eval("[data-page=deployment] b, [data-page=deployment] img, [data-page=deployment] script", (found) => found.length), 0, "no element was created from it");
  t.is(await page.evaluate(() => window.__injected), undefined);
});
