import { printable } from "./terminal-text.js";

/** Left-aligned columns separated by two spaces, header first; every cell printable (cells carry what hosts report). */
export function renderTable(header: string[], rows: string[][]): string {
  const cells = rows.map((row) => row.map((cell) => printable(cell)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (row: string[]) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(header), ...cells.map(line)].join("\n");
}
