import { accessSync, constants, existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Where Linux mounts cgroups. */
export const DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup";

/** What this host can enforce, found once at agent start. */
export interface CgroupSupport {
  /** 2: one unified hierarchy at `root`; 1: one hierarchy per controller under it; null: neither usable. */
  version: 1 | 2 | null;
  /** A memory limit can be applied. */
  memory: boolean;
  /** A CPU limit can be applied. */
  cpu: boolean;
  /** Why a limit cannot be applied, when `memory` or `cpu` is false. */
  why?: string;
  /** The cgroup mount root that was examined. */
  root: string;
  /** Where instance cgroups are made for the memory limit: `root` on v2, the memory hierarchy on v1. */
  memoryRoot?: string;
  /** Likewise for the CPU limit: `root` on v2, the cpu hierarchy on v1 (often `cpu,cpuacct`). */
  cpuRoot?: string;
}

/**
 * Which cgroup version and controllers this host offers, and whether the agent
 * may use them: v2 when `<root>/cgroup.controllers` lists memory or cpu, else
 * the v1 memory and cpu hierarchies under `root`. Reads only; never throws.
 */
export function detectCgroups(root = DEFAULT_CGROUP_ROOT): CgroupSupport {
  if (!existsSync(root)) return none(root, `${root} does not exist: no cgroup filesystem is mounted`);
  const controllers = readWords(join(root, "cgroup.controllers"));
  if (controllers && (controllers.includes("memory") || controllers.includes("cpu"))) return detectV2(root, controllers);
  const v1 = detectV1(root);
  if (v1) return v1;
  return none(
    root,
    controllers
      ? `cgroup v2 at ${root} offers neither the memory nor the cpu controller (cgroup.controllers: ${JSON.stringify(controllers.join(" "))}), and no cgroup v1 memory or cpu hierarchy is mounted under it`
      : `no cgroup v2 hierarchy at ${root} (no cgroup.controllers) and no cgroup v1 memory or cpu hierarchy under it`,
  );
}

function detectV2(root: string, controllers: string[]): CgroupSupport {
  const denied = notWritable(root);
  if (denied) return none(root, `cgroup v2 at ${root} is not writable (${denied}); the agent must run as root on the host, not in a read-only container`);
  const memory = controllers.includes("memory");
  const cpu = controllers.includes("cpu");
  const missing = [memory ? undefined : "memory", cpu ? undefined : "cpu"].filter(Boolean).join(" and ");
  return {
    version: 2,
    memory,
    cpu,
    root,
    ...(memory ? { memoryRoot: root } : {}),
    ...(cpu ? { cpuRoot: root } : {}),
    ...(missing ? { why: `cgroup v2 at ${root} has no ${missing} controller (cgroup.controllers: ${JSON.stringify(controllers.join(" "))})` } : {}),
  };
}

function detectV1(root: string): CgroupSupport | undefined {
  const memoryRoot = findV1Hierarchy(root, "memory", "memory.limit_in_bytes");
  const cpuRoot = findV1Hierarchy(root, "cpu", "cpu.cfs_quota_us");
  if (!memoryRoot && !cpuRoot) return undefined;
  const why: string[] = [];
  let memory = false;
  let cpu = false;
  for (const [name, dir] of [["memory", memoryRoot], ["cpu", cpuRoot]] as const) {
    if (!dir) {
      why.push(`no cgroup v1 ${name} hierarchy under ${root}`);
      continue;
    }
    const denied = notWritable(dir);
    if (denied) why.push(`cgroup v1 ${name} hierarchy ${dir} is not writable (${denied}); the agent must run as root`);
    else if (name === "memory") memory = true;
    else cpu = true;
  }
  if (!memory && !cpu) return none(root, why.join("; "));
  return {
    version: 1,
    memory,
    cpu,
    root,
    ...(memory ? { memoryRoot } : {}),
    ...(cpu ? { cpuRoot } : {}),
    ...(why.length > 0 ? { why: why.join("; ") } : {}),
  };
}

/**
 * The v1 hierarchy that carries `controller`: a directory named after it or a
 * co-mounted one such as `cpu,cpuacct`, holding the file that proves it.
 */
function findV1Hierarchy(root: string, controller: string, marker: string): string | undefined {
  const exact = join(root, controller);
  if (existsSync(join(exact, marker))) return exact;
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return undefined;
  }
  const comounted = entries.find((name) => name.split(",").includes(controller) && existsSync(join(root, name, marker)));
  return comounted === undefined ? undefined : join(root, comounted);
}

function none(root: string, why: string): CgroupSupport {
  return { version: null, memory: false, cpu: false, why, root };
}

function readWords(path: string): string[] | undefined {
  try {
    return readFileSync(path, "utf8").split(/\s+/).filter(Boolean);
  } catch {
    return undefined;
  }
}

/** The errno why `dir` cannot be written to (EROFS, EACCES), or undefined when it can. */
function notWritable(dir: string): string | undefined {
  try {
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
}
