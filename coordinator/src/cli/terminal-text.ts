/**
 * Text the CLI did not write itself — host names and messages, agents' and
 * apps' log lines, error messages relayed by the coordinator — goes through
 * `printable` before it reaches the terminal. A control character (C0 but
 * tab, DEL, C1) or a bidirectional override is shown as an escape
 * (`\x1b`, `\u202e`) instead of acted on, so a host cannot move the cursor,
 * recolour, retitle or rewrite what the operator reads.
 */
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}
