import { formatBytes } from "@cutover/log";
import type { DeployPlanView } from "../api/plan.js";
import { renderSpecDiff } from "../rollout/spec-diff.js";
import { renderCheck } from "./commands/check.js";
import { renderTable } from "./table.js";
import { printable } from "./terminal-text.js";

/** The plan as `cutover deploy --plan` prints it: the order, the spec's changes, the preflight, and the verdict. */
export function renderPlan(plan: DeployPlanView): string {
  const deploying = plan.hosts.filter((h) => h.action === "deploy").length;
  const sections: string[] = [];
  sections.push(`plan: deploy ${plan.app} ${plan.release} (${plan.strategy}) to ${plan.hosts.length} host(s) in ${plan.batches.length} batch(es); nothing was changed`);
  sections.push(
    renderTable(
      ["BATCH", "HOST", "LIVE", "RELEASE", "ACTION"],
      plan.hosts.map((h) => [String(h.batch), h.name, h.liveColor ?? "-", `${h.release.from ?? "(none)"} → ${h.release.to}`, h.action === "deploy" ? "deploy" : "none (already live)"]),
    ),
  );
  if (plan.leftOut.length > 0) sections.push(`left out (cordoned, or failing the preflight with --skip-failing-hosts): ${plan.leftOut.join(", ")}`);
  if (plan.specChanges === null) sections.push(`spec: first deploy of ${plan.app}, no previous spec to compare`);
  else if (plan.specChanges.length === 0) sections.push("spec: unchanged from the last deployed spec");
  else {
    const kept = deploying < plan.hosts.length ? "\n  (hosts already on this release keep their running instance: the spec reaches them with the next release)" : "";
    sections.push(`spec changes against the last deployed spec:\n${renderSpecDiff(plan.specChanges).map((line) => `  ${printable(line)}`).join("\n")}${kept}`);
  }
  if (plan.artifact) {
    sections.push(`artifact: sha256 ${plan.artifact.sha256.slice(0, 12)}… (${formatBytes(plan.artifact.bytes)}), ${plan.artifact.uploaded ? "already on the coordinator" : "not uploaded yet (the deploy uploads it)"}`);
  }
  sections.push(`preflight: ${plan.preflight.ok ? "pass" : "FAIL"}\n${renderCheck(plan.app, plan.preflight.hosts)}`);
  if (plan.refusals.length > 0) sections.push(`a deploy now would be refused:\n${plan.refusals.map((r) => `  ${printable(r.message).replaceAll("\n", "\n  ")} (${r.code})`).join("\n")}`);
  sections.push(
    plan.outcome === "no-change"
      ? `no change: every host already serves ${plan.release} with this spec`
      : plan.outcome === "change"
        ? `would change: ${deploying} host(s) get ${plan.release}${plan.specChanges?.length ? `, ${plan.specChanges.length} spec field(s)` : plan.specChanges === null ? ", the app's first spec" : ""}`
        : "refused: see above",
  );
  return sections.join("\n\n");
}
