import test from "ava";
import { renderTable } from "./table.js";

test("a cell a host chose cannot recolour the table, add a row or break its columns", (t) => {
  const table = renderTable(["NAME", "STATE"], [["\x1b[32mweb-1\nweb-9", "online"], ["web-2", "late"]]);
  const shown = "\\x1b[32mweb-1\\x0aweb-9";
  t.is(table, [`${"NAME".padEnd(shown.length)}  STATE`, `${shown}  online`, `${"web-2".padEnd(shown.length)}  late`].join("\n"));
});
