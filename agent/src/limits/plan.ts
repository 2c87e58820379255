import { join } from "node:path";
import { isValidName, NAME_RULE } from "@cutover/protocol";
import type { Color } from "../process/index.js";
import type { CgroupSupport } from "./detect.js";
import { LimitsError } from "./errors.js";
import { cpuMaxValue, cpuQuotaUs, CPU_PERIOD_US, formatBytes, memoryLimitValue } from "./values.js";

/** Every instance cgroup lives under this one, in each hierarchy: `<root>/cutover/<app>-<color>`. */
export const CGROUP_PARENT = "cutover";

/** The limits of one app instance, from the spec's `limits` section; an absent field is no limit. */
export interface LimitRequest {
  app: string;
  color: Color;
  /** memory.max (v2) / memory.limit_in_bytes (v1); swap is held at 0 where the kernel accounts it. */
  memoryBytes?: number;
  /** CPU cores, e.g. 0.5: a CFS quota per CPU_PERIOD_US. */
  cpuCores?: number;
}

/** One filesystem action of applying limits, in order. */
export type CgroupStep =
  /** mkdir -p; an existing directory is kept. */
  | { op: "mkdir"; path: string }
  /** Adds the controllers missing from a v2 `cgroup.subtree_control` ("+memory +cpu"). */
  | { op: "enable"; path: string; controllers: string[] }
  /** The instance's own cgroup: a leftover one is removed and made again when empty, else reused. */
  | { op: "fresh"; path: string }
  /** Writes `value`; with `ifPresent`, only when the kernel offers the file (swap accounting, say). */
  | { op: "write"; path: string; value: string; ifPresent?: true };

/** What applying limits to one instance creates and writes; computed without touching the filesystem. */
export interface LimitsPlan {
  version: 1 | 2;
  /** `<app>-<color>` */
  name: string;
  /** The cgroup that holds the memory limit (v2: the instance's only one). */
  memoryDir?: string;
  /** The cgroup that holds the CPU limit (v2: the same as memoryDir). */
  cpuDir?: string;
  /** The instance's cgroups: the process joins each, removeLimits deletes each. */
  dirs: string[];
  /** v1 instance cgroups of a controller this request does not limit (an earlier spec's); removed if empty. */
  staleDirs: string[];
  steps: CgroupStep[];
}

/** `<app>-<color>`, after checking that both are safe in a path. */
export function cgroupName(app: string, color: Color): string {
  if (!isValidName(app)) throw new LimitsError("ERR_LIMITS_INVALID", `app name ${JSON.stringify(app)} is not valid: ${NAME_RULE}`);
  if (color !== "blue" && color !== "green") throw new LimitsError("ERR_LIMITS_INVALID", `color ${JSON.stringify(color)} is not blue or green`);
  return `${app}-${color}`;
}

/**
 * The cgroups and values for one instance's limits. v2: one directory
 * `<root>/cutover/<app>-<color>` with memory.max, memory.swap.max and cpu.max,
 * controllers enabled on the way down. v1: `memory/cutover/<app>-<color>` with
 * memory.limit_in_bytes (and memsw) and `cpu/cutover/<app>-<color>` with the
 * CFS quota and period. A limit not asked for is reset to "no limit" where a
 * reused cgroup may still carry one. Throws ERR_LIMITS_UNSUPPORTED when the
 * host cannot enforce a requested limit, ERR_LIMITS_INVALID for bad values.
 */
export function limitsPlan(support: CgroupSupport, request: LimitRequest): LimitsPlan {
  const name = cgroupName(request.app, request.color);
  const { memoryBytes, cpuCores } = request;
  if (memoryBytes === undefined && cpuCores === undefined) {
    throw new LimitsError("ERR_LIMITS_INVALID", `no memory or cpu limit was given for ${request.app} ${request.color}; apply limits only when the spec has some`);
  }
  const memory = memoryBytes === undefined ? undefined : memoryLimitValue(memoryBytes);
  if (cpuCores !== undefined) cpuQuotaUs(cpuCores);
  const wanted = [memory !== undefined ? "memory" : undefined, cpuCores !== undefined ? "cpu" : undefined].filter((c): c is string => c !== undefined);
  const missing = wanted.filter((c) => !support[c as "memory" | "cpu"]);
  if (support.version === null || missing.length > 0) {
    const asked = [memory !== undefined ? `memory ${formatBytes(memoryBytes!)}` : "", cpuCores !== undefined ? `cpu ${cpuCores}` : ""].filter(Boolean).join(", ");
    throw new LimitsError(
      "ERR_LIMITS_UNSUPPORTED",
      `limits unsupported here: ${support.why ?? `no usable ${missing.join(" or ")} cgroup controller`} (the spec asks for ${asked}); remove \`limits\` from the spec or deploy to hosts with cgroups`,
    );
  }
  return support.version === 2 ? planV2(support, name, wanted, memory, cpuCores) : planV1(support, name, memory, cpuCores);
}

function planV2(support: CgroupSupport, name: string, wanted: string[], memory: string | undefined, cpuCores: number | undefined): LimitsPlan {
  const parent = join(support.root, CGROUP_PARENT);
  const dir = join(parent, name);
  const steps: CgroupStep[] = [
    { op: "enable", path: join(support.root, "cgroup.subtree_control"), controllers: wanted },
    { op: "mkdir", path: parent },
    { op: "enable", path: join(parent, "cgroup.subtree_control"), controllers: wanted },
    { op: "fresh", path: dir },
  ];
  // A reused cgroup keeps what an earlier spec set: write "max" for what is not limited now.
  if (memory !== undefined) {
    steps.push({ op: "write", path: join(dir, "memory.max"), value: memory }, { op: "write", path: join(dir, "memory.swap.max"), value: "0", ifPresent: true });
  } else {
    steps.push({ op: "write", path: join(dir, "memory.max"), value: "max", ifPresent: true }, { op: "write", path: join(dir, "memory.swap.max"), value: "max", ifPresent: true });
  }
  steps.push(cpuCores !== undefined ? { op: "write", path: join(dir, "cpu.max"), value: cpuMaxValue(cpuCores) } : { op: "write", path: join(dir, "cpu.max"), value: cpuMaxValue(undefined), ifPresent: true });
  return {
    version: 2,
    name,
    ...(memory !== undefined ? { memoryDir: dir } : {}),
    ...(cpuCores !== undefined ? { cpuDir: dir } : {}),
    dirs: [dir],
    staleDirs: [],
    steps,
  };
}

function planV1(support: CgroupSupport, name: string, memory: string | undefined, cpuCores: number | undefined): LimitsPlan {
  const steps: CgroupStep[] = [];
  const dirs: string[] = [];
  const staleDirs: string[] = [];
  const memoryDir = support.memoryRoot && join(support.memoryRoot, CGROUP_PARENT, name);
  const cpuDir = support.cpuRoot && join(support.cpuRoot, CGROUP_PARENT, name);
  if (memory !== undefined && memoryDir) {
    steps.push(
      { op: "mkdir", path: join(support.memoryRoot!, CGROUP_PARENT) },
      { op: "fresh", path: memoryDir },
      // memsw must stay >= the limit at every write: lift it, set the limit, then hold it there (no swap).
      { op: "write", path: join(memoryDir, "memory.memsw.limit_in_bytes"), value: "-1", ifPresent: true },
      { op: "write", path: join(memoryDir, "memory.limit_in_bytes"), value: memory },
      { op: "write", path: join(memoryDir, "memory.memsw.limit_in_bytes"), value: memory, ifPresent: true },
      // A reused cgroup may have had the OOM killer disabled: the app would hang at the limit instead.
      { op: "write", path: join(memoryDir, "memory.oom_control"), value: "0", ifPresent: true },
    );
    dirs.push(memoryDir);
  } else if (memoryDir) {
    staleDirs.push(memoryDir);
  }
  if (cpuCores !== undefined && cpuDir) {
    steps.push(
      { op: "mkdir", path: join(support.cpuRoot!, CGROUP_PARENT) },
      { op: "fresh", path: cpuDir },
      { op: "write", path: join(cpuDir, "cpu.cfs_period_us"), value: String(CPU_PERIOD_US) },
      { op: "write", path: join(cpuDir, "cpu.cfs_quota_us"), value: String(cpuQuotaUs(cpuCores)) },
    );
    dirs.push(cpuDir);
  } else if (cpuDir) {
    staleDirs.push(cpuDir);
  }
  return {
    version: 1,
    name,
    ...(memory !== undefined ? { memoryDir } : {}),
    ...(cpuCores !== undefined ? { cpuDir } : {}),
    dirs,
    staleDirs,
    steps,
  };
}
