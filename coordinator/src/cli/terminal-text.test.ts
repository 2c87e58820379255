import test from "ava";
import { printable } from "./terminal-text.js";

const shown = test.macro((t, input: string, expected: string) => {
  t.is(printable(input), expected);
});

test("plain text and tabs are kept", shown, "web-1\tstarting v2 on green — ünïcode ✓", "web-1\tstarting v2 on green — ünïcode ✓");
test("an ESC sequence (recolour, clear the screen) is shown, not run", shown, "\x1b[2J\x1b[31mok", "\\x1b[2J\\x1b[31mok");
test("an OSC title change ending in BEL is shown", shown, "\x1b]0;pwned\x07", "\\x1b]0;pwned\\x07");
test("a carriage return cannot overwrite the line", shown, "failed\rsucceeded", "failed\\x0dsucceeded");
test("a newline cannot forge another table row", shown, "web-1\nweb-2  online", "web-1\\x0aweb-2  online");
test("C1 controls (8-bit CSI) and DEL are shown", shown, "\u009b31m\u007f", "\\x9b31m\\x7f");
test("a bidirectional override cannot reorder what is read", shown, "evil\u202egpj.exe", "evil\\u202egpj.exe");
