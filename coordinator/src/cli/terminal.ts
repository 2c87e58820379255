/**
 * What the CLI knows of the terminal it draws on: its size, read again at each draw (a
 * resized window is honoured), and whether to colour — only a TTY, and never when
 * NO_COLOR is set to anything (https://no-color.org) or TERM is "dumb".
 */
export interface Terminal {
  readonly columns: number;
  readonly rows: number;
  readonly color: boolean;
}

/** No limits and no colour: pipes, files, and the tests' expectations. */
export const PLAIN_TERMINAL: Terminal = { columns: Number.POSITIVE_INFINITY, rows: Number.POSITIVE_INFINITY, color: false };

export function stdoutTerminal(env: NodeJS.ProcessEnv = process.env, stdout: NodeJS.WriteStream = process.stdout): Terminal {
  const color = Boolean(stdout.isTTY) && !env.NO_COLOR && env.TERM !== "dumb";
  return {
    get columns() {
      return stdout.columns || 80;
    },
    get rows() {
      return stdout.rows || 24;
    },
    color,
  };
}

const STYLES = { red: "31", green: "32", yellow: "33", bold: "1", dim: "2" } as const;
export type Style = keyof typeof STYLES;

/** `text` in `style` when the terminal colours, else as it is. */
export function paint(terminal: Terminal, style: Style | null, text: string): string {
  return terminal.color && style !== null ? `\x1b[${STYLES[style]}m${text}\x1b[0m` : text;
}

/**
 * At most `width` characters of `text` (code points), the last one an ellipsis when
 * something was cut: a line that wraps would break a view redrawn by moving the cursor up.
 */
export function clip(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 0 ? "" : `${chars.slice(0, width - 1).join("")}…`;
}

/** How a step or an outcome reads: failures red, what went through green, the rest plain. */
export function styleOf(text: string): Style | null {
  if (/\b(fail(ed|s)?|error|refused|rolled[ _]back|rolling[ _]back|aborted|unhealthy)\b/i.test(text)) return "red";
  if (/\b(succeeded|switched|healthy|done|promoted)\b/i.test(text)) return "green";
  if (/\b(paused|waiting|inconclusive)\b/i.test(text)) return "yellow";
  return null;
}
