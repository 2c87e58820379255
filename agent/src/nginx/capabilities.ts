import { basename, join } from "node:path";

/** What this host's nginx can do; decides whether live mode and tcp sites are possible. */
export interface NginxCapabilities {
  /** The http Lua module (with its shared dicts and balancer) can be used: live switching. */
  lua: boolean;
  /** The stream module can be used: tcp sites. */
  stream: boolean;
}

/** What `nginx -V` says about the binary. */
export interface NginxBuild {
  version: string | null;
  /** Built in (`--with-stream`), so no load_module is needed. */
  staticStream: boolean;
  /** Lua compiled in (OpenResty style `--add-module=.../ngx_lua...`). */
  staticLua: boolean;
  modulesPath: string | null;
  pidPath: string | null;
  confPath: string | null;
}

export const MODULE_FILES = {
  ndk: "ndk_http_module.so",
  lua: "ngx_http_lua_module.so",
  stream: "ngx_stream_module.so",
} as const;

export type ModuleName = keyof typeof MODULE_FILES;

/** Where Debian/Ubuntu put dynamic modules (the second is a symlink to the first there). */
export const DEFAULT_MODULE_DIRS = ["/usr/share/nginx/modules", "/usr/lib/nginx/modules"] as const;

function flag(output: string, name: string): string | null {
  const match = new RegExp(`--${name}=(\\S+)`).exec(output);
  return match?.[1] ?? null;
}

export function parseBuild(versionOutput: string): NginxBuild {
  return {
    version: /nginx version: \S+?\/(\S+)/.exec(versionOutput)?.[1] ?? null,
    staticStream: /--with-stream(?=\s|$)/.test(versionOutput),
    staticLua: /--add-module=\S*(?:lua-nginx-module|ngx_lua)/.test(versionOutput),
    modulesPath: flag(versionOutput, "modules-path"),
    pidPath: flag(versionOutput, "pid-path"),
    confPath: flag(versionOutput, "conf-path"),
  };
}

/** Absolute path of each module file found in the first directory that has it. */
export function findModules(dirs: readonly string[], exists: (path: string) => boolean): Partial<Record<ModuleName, string>> {
  const found: Partial<Record<ModuleName, string>> = {};
  for (const name of Object.keys(MODULE_FILES) as ModuleName[]) {
    const path = dirs.map((dir) => join(dir, MODULE_FILES[name])).find(exists);
    if (path !== undefined) found[name] = path;
  }
  return found;
}

/** The module search order: the binary's own modules path first, then the Debian defaults. */
export function moduleDirs(build: NginxBuild): string[] {
  return [...new Set([...(build.modulesPath ? [build.modulesPath] : []), ...DEFAULT_MODULE_DIRS])];
}

/**
 * Managed mode loads modules itself: capabilities are what exists on disk or is built
 * in, and `load` lists the load_module paths in order (ndk before lua, which needs it).
 * `lua: false` leaves the Lua module out where it is a file: nothing of a reload-mode agent
 * uses it, and every reload would pay its start-up (about 9 of nginx's 22 ms to parse the
 * managed config here).
 */
export function managedCapabilities(
  build: NginxBuild,
  found: Partial<Record<ModuleName, string>>,
  options: { lua?: boolean } = {},
): { capabilities: NginxCapabilities; load: string[] } {
  const load: string[] = [];
  const luaFile = options.lua === false ? undefined : found.lua;
  const lua = build.staticLua || luaFile !== undefined;
  if (!build.staticLua && luaFile !== undefined) {
    if (found.ndk !== undefined) load.push(found.ndk);
    load.push(luaFile);
  }
  const stream = build.staticStream || found.stream !== undefined;
  if (!build.staticStream && found.stream !== undefined) load.push(found.stream);
  return { capabilities: { lua, stream }, load };
}

/** Basenames of the modules an `nginx -T` dump loads (`load_module modules/x.so;`). */
export function loadedModules(dump: string): Set<string> {
  const names = new Set<string>();
  for (const match of dump.matchAll(/^\s*load_module\s+["']?([^"';\s]+)["']?\s*;/gm)) {
    if (match[1] !== undefined) names.add(basename(match[1]));
  }
  return names;
}

/** System mode cannot add load_module lines (conf.d is inside http): only what the host loads counts. */
export function systemCapabilities(build: NginxBuild, dump: string): NginxCapabilities {
  const loaded = loadedModules(dump);
  return {
    lua: build.staticLua || loaded.has(MODULE_FILES.lua),
    stream: build.staticStream || loaded.has(MODULE_FILES.stream),
  };
}
