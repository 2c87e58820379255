/** One thing wrong with a spec: where, what was expected, and what was found. */
export interface SpecIssue {
  /**
   * Where, as the spec spells it: `ports.green`, `health.http.path`,
   * `run.command[1]`. Problems that are not about one field use a
   * parenthesised place instead: `(file)`, `(root)`, or `line 3, column 5`
   * for YAML syntax.
   */
  field: string;
  /** What the field must be, in words an operator can act on. */
  expected: string;
  /** What was found (quoted strings, `nothing` when the field is missing). */
  got?: string;
}

/**
 * A spec that cannot be used. Carries every issue found, not just the first,
 * so an operator fixes the file in one pass.
 */
export class SpecError extends Error {
  override readonly name = "SpecError";
  readonly code = "ERR_SPEC_INVALID" as const;
  /** The spec file, as the caller named it. */
  readonly file: string;
  /** Every problem found, in document order. */
  readonly issues: SpecIssue[];

  constructor(file: string, issues: SpecIssue[]) {
    super(issues.map((issue) => formatIssue(file, issue)).join("\n"));
    this.file = file;
    this.issues = issues;
  }
}

/** `<file>: <field>: expected <expected>, got <got>` */
function formatIssue(file: string, { field, expected, got }: SpecIssue): string {
  return `${file}: ${field}: expected ${expected}${got === undefined ? "" : `, got ${got}`}`;
}
