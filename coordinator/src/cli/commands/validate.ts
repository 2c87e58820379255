import type { Command } from "commander";
import { SpecError, type AppSpec, type SpecIssue } from "@cutover/spec";
import { EXIT, ExitError } from "../exit-error.js";
import { readSpec } from "./deploy.js";

/** `validate --json` for a spec that parses. */
export interface ValidSpecJson {
  valid: true;
  file: string;
  app: string;
  strategy: string;
  batch: string;
  hosts: Record<string, string>;
  artifact: { path: string; kind: "dir" | "tarball" } | null;
}

/** `validate --json` for one that does not: every issue, in document order. */
export interface InvalidSpecJson {
  valid: false;
  file: string;
  issues: SpecIssue[];
}

function batchText(spec: AppSpec): string {
  const { batch } = spec.strategy;
  return batch.kind === "count" ? String(batch.count) : `${batch.percent}%`;
}

function validJson(file: string, spec: AppSpec): ValidSpecJson {
  return { valid: true, file, app: spec.app, strategy: spec.strategy.type, batch: batchText(spec), hosts: spec.hosts, artifact: spec.artifact ?? null };
}

function describeValid(json: ValidSpecJson): string {
  const hosts = Object.entries(json.hosts).map(([k, v]) => `${k}=${v}`).join(",");
  const artifact = json.artifact ? `artifact ${json.artifact.path} (${json.artifact.kind === "dir" ? "a directory, packed at deploy" : "a tarball"})` : "no artifact (run.command uses what the hosts have)";
  return `${json.file}: valid: app ${json.app}, ${json.strategy} ${json.batch} at a time, hosts ${hosts}, ${artifact}`;
}

export function registerValidate(program: Command): void {
  program
    .command("validate")
    .description("check an app spec offline, as deploy would before sending anything (no coordinator needed); exit 64 if it is invalid")
    .argument("<spec>", "app spec file (YAML)")
    .option("--strategy <type>", "override strategy.type, as deploy --strategy")
    .option("--batch <n|p%>", "override strategy.batch, as deploy --batch")
    .option("--json", "print one JSON object: {valid: true, file, app, strategy, batch, hosts, artifact} or {valid: false, file, issues: [{field, expected, got}]}")
    .action((file: string, options: { strategy?: string; batch?: string; json?: boolean }) => {
      let spec: AppSpec;
      try {
        spec = readSpec(file, options).spec;
      } catch (error) {
        if (!(error instanceof SpecError)) throw error;
        if (options.json) {
          const invalid: InvalidSpecJson = { valid: false, file, issues: error.issues };
          process.stdout.write(`${JSON.stringify(invalid)}\n`);
          process.exitCode = EXIT.usage;
          return;
        }
        throw new ExitError(`${file} is invalid:\n${error.message}`, EXIT.usage);
      }
      const json = validJson(file, spec);
      process.stdout.write(options.json ? `${JSON.stringify(json)}\n` : `${describeValid(json)}\n`);
    });
}
