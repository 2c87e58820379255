import type { Color } from "../process/index.js";

/**
 * One instance's limits once applied: where its cgroups are and what they
 * hold. Plain data (JSON-safe), so the caller may keep it with the instance.
 */
export interface LimitHandle {
  version: 1 | 2;
  app: string;
  color: Color;
  /** `<app>-<color>` */
  name: string;
  /** The cgroup holding the memory limit; absent without one. */
  memoryDir?: string;
  /** The cgroup holding the CPU limit; absent without one (v2: the same directory as memoryDir). */
  cpuDir?: string;
  /** Every cgroup of the instance: the process joins each, removeLimits deletes each. */
  dirs: string[];
  /**
   * Inode of each of `dirs` when made: removeLimits leaves a directory of the
   * same name alone once it is another one (the next instance of the color).
   */
  inodes?: number[];
  memoryBytes?: number;
  cpuCores?: number;
  /**
   * The memory cgroup's OOM-kill counter when the limits were applied: a
   * reused cgroup keeps the kills of the instance before, which must not count.
   */
  oomKillsBefore: number;
}
