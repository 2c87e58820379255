// Set-up shared by `npm run build`, `npm test`, `npm run demo` and `npm run bench`:
// install npm dependencies when missing, build, and make sure nginx is there.
// Uses only Node built-ins: it runs before `npm install` has.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Debian packages the agent uses: nginx, Lua for live switching, stream for TCP apps. */
export const NGINX_PACKAGES = ["nginx-light", "libnginx-mod-http-lua", "libnginx-mod-stream"];

function run(file, args, options = {}) {
  execFileSync(file, args, { cwd: root, stdio: "inherit", ...options });
}

export function ensureInstalled() {
  const marker = join(root, "node_modules", ".package-lock.json");
  const lock = join(root, "package-lock.json");
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.log("setup: installing npm dependencies (npm ci)");
  run("npm", ["ci", "--no-audit", "--no-fund"]);
}

export function build() {
  run(process.execPath, [join(root, "packages", "protocol", "scripts", "generate.mjs")]);
  run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-b"]);
  // The dashboard the coordinator serves at /ui/: browser code, bundled into coordinator/dist/ui.
  run(process.execPath, [join(root, "coordinator", "src", "ui", "build.mjs")]);
}

function nginxModules() {
  const nginx = spawnSync("nginx", ["-V"], { encoding: "utf8" });
  if (nginx.error) return null;
  const dirs = ["/usr/share/nginx/modules", "/usr/lib/nginx/modules"];
  const has = (file) => dirs.some((d) => existsSync(join(d, file)));
  return { lua: has("ngx_http_lua_module.so"), stream: has("ngx_stream_module.so") || /--with-stream(\s|$)/.test(nginx.stderr) };
}

/**
 * Debian packages only the tests need, each with the program it provides: a real Prometheus for the analysis tests, a headless Chromium for the dashboard's,
 * sshd for `hosts bootstrap` (each test starts one per host on loopback; by its full path, as /usr/sbin is not on every PATH),
 * PostgreSQL for the store's second engine and HA coordinators (each test file makes a throwaway cluster with initdb/pg_ctl;
 * Debian keeps them off PATH, so the check is pg_ctlcluster, which the same package set installs).
 */
export const TEST_PACKAGES = [
  { name: "prometheus", program: "prometheus" },
  { name: "chromium", program: "chromium" },
  { name: "openssh-server", program: "/usr/sbin/sshd" },
  { name: "postgresql", program: "pg_ctlcluster" },
];

/** Installs Debian packages where we are root on Debian/Ubuntu; false elsewhere (the caller says what to install). */
function aptInstall(packages) {
  if (process.getuid?.() !== 0 || !existsSync("/etc/debian_version")) return false;
  console.log(`setup: installing ${packages.join(" ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  run("apt-get", ["update", "-qq"], { env });
  run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], { env });
  return true;
}

/** Installs nginx and its modules where we are root on Debian/Ubuntu; otherwise says what to install. */
export function ensureNginx() {
  const found = nginxModules();
  if (found && found.lua && found.stream) return;
  if (aptInstall(NGINX_PACKAGES)) return;
  console.error(
    `setup: nginx with the Lua and stream modules is needed.\n` +
      `  On Debian/Ubuntu, as root: apt-get install ${NGINX_PACKAGES.join(" ")}\n` +
      `  Found: ${found ? `nginx (lua: ${found.lua}, stream: ${found.stream})` : "no nginx on PATH"}`,
  );
  process.exit(1);
}

/** The tests' other real parts (TEST_PACKAGES): installed where we are root on Debian/Ubuntu; otherwise says which. */
export function ensureTestPackages() {
  const onPath = (program) => spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
  const missing = TEST_PACKAGES.filter((p) => !onPath(p.program)).map((p) => p.name);
  if (missing.length === 0 || aptInstall(missing)) return;
  console.error(`setup: the tests start a real ${missing.join(", ")}.\n  On Debian/Ubuntu, as root: apt-get install ${missing.join(" ")}`);
  process.exit(1);
}
