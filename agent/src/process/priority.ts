import { readFileSync, writeFileSync } from "node:fs";
import type { ProcessSpec } from "./spec.js";

/**
 * Apps run below the agent, so a host saturated by its own apps still gives the
 * agent the CPU it needs to heartbeat, answer pings and finish a switch: nice
 * levels above the agent's own (the systemd unit runs the agent at Nice=-5, so
 * apps land on the ordinary 0).
 */
export const APP_NICE_INCREMENT = 5;
/** coreutils' nice (Essential on Debian): raises the niceness, then execs the app (same pid). */
export const DEFAULT_NICE = "/usr/bin/nice";

/**
 * Wraps `spec` so the app starts APP_NICE_INCREMENT nice levels below the agent.
 * A wrapper, not setpriority() after the spawn: niceness is per thread on Linux,
 * and a runtime starts its threads before the agent could renice them. Pure.
 */
export function belowAgent(spec: ProcessSpec, nice = DEFAULT_NICE): ProcessSpec {
  return { ...spec, file: nice, args: ["-n", String(APP_NICE_INCREMENT), spec.file, ...spec.args], shownArgv: spec.shownArgv ?? [spec.file, ...spec.args] };
}

/**
 * The unit protects the agent from the OOM killer (OOMScoreAdjust=-500), and a child
 * inherits that: give the app back the ordinary score, so under memory pressure an
 * app goes before the agent that could restart it. A no-op when the agent is not protected.
 */
export function unprotectFromOom(pid: number): void {
  const own = Number(readFileSync("/proc/self/oom_score_adj", "utf8").trim());
  if (!(own < 0)) return;
  writeFileSync(`/proc/${pid}/oom_score_adj`, "0");
}
