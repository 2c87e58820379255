/** Reading a spec: YAML text or file → validated AppSpec, or a SpecError listing every problem. */
import { readFileSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isScalar, parseDocument, type YAMLError } from "yaml";
import { SpecError, type SpecIssue } from "./errors.js";
import type { AppSpec } from "./types.js";
import { validateSpec, type ExistsFn } from "./validate.js";

/** Aliases a spec may expand; far above any real spec, low enough to stop a "billion laughs" file. */
const MAX_ALIAS_COUNT = 100;

export interface ParseSpecOptions {
  /** The spec's file name, used in every issue message; also where relative paths start unless `baseDir` is given. */
  file: string;
  /** Directory relative paths (artifact) are resolved against. Default: the directory of `file`. */
  baseDir?: string;
  /** Whether a path is a file, a directory or absent. Default: a real filesystem check. */
  exists?: ExistsFn;
}

/**
 * Parses and validates a spec. Pure apart from `exists`, which only runs when
 * the spec names an artifact. Throws SpecError with every issue found.
 */
export function parseSpec(text: string, options: ParseSpecOptions): AppSpec {
  const { file } = options;
  const doc = parseDocument(text, { merge: true, prettyErrors: true });
  // Warnings (unresolved tags, collection keys) mean the file does not say what its author thinks.
  const problems = [...doc.errors, ...doc.warnings];
  if (problems.length > 0) throw new SpecError(file, problems.map(yamlIssue));

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw new SpecError(file, [{ field: "(root)", expected: "valid YAML", got: (error as Error).message }]);
  }

  const { spec, issues } = validateSpec(raw, {
    baseDir: resolve(options.baseDir ?? dirname(resolve(file))),
    exists: options.exists ?? fsExists,
    scalarSource: (path) => {
      const node = doc.getIn(path, true);
      return isScalar(node) && typeof node.source === "string" ? node.source : undefined;
    },
  });
  if (issues.length > 0) throw new SpecError(file, issues);
  return spec;
}

/** Reads and parses a spec file; an unreadable file is a SpecError too. */
export function parseSpecFile(path: string): AppSpec {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new SpecError(path, [{ field: "(file)", expected: "a readable spec file", got: (error as Error).message }]);
  }
  return parseSpec(text, { file: path });
}

function fsExists(path: string): "file" | "dir" | null {
  try {
    const stats = statSync(path, { throwIfNoEntry: false });
    return stats?.isDirectory() ? "dir" : stats?.isFile() ? "file" : null;
  } catch {
    return null; // unreadable (EACCES, ELOOP): as good as absent for shipping it
  }
}

function yamlIssue(error: YAMLError): SpecIssue {
  const at = error.linePos?.[0];
  // The yaml package appends " at line L, column C:" and a source excerpt; the field already says where.
  const what = error.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
  return { field: at ? `line ${at.line}, column ${at.col}` : "(root)", expected: "valid YAML", got: what };
}
