import test from "ava";
import { createLogger } from "@cutover/log";
import { v1, type cutover } from "@cutover/protocol";
import { CommandDispatcher } from "./dispatcher.js";

const Status = v1.CommandResult.Status;
const quiet = createLogger("test", { write: () => {} });
const NOW = 1_800_000_000_000;
const command = (fields: cutover.v1.Command.$Properties) => v1.Command.create({ deadlineUnixMs: NOW + 1000, ...fields });

test("ping is answered with its payload", async (t) => {
  const dispatcher = new CommandDispatcher(quiet, () => NOW);
  const result = await dispatcher.dispatch(command({ commandId: "a", ping: { payload: "hi" } }));
  t.is(result.status, Status.OK);
  t.is(result.commandId, "a");
  t.is(result.pong?.payload, "hi");
});

test("an operation this agent does not know is answered UNSUPPORTED, not a crash", async (t) => {
  const dispatcher = new CommandDispatcher(quiet, () => NOW);
  const result = await dispatcher.dispatch(command({ commandId: "b" }));
  t.is(result.status, Status.UNSUPPORTED);
  t.is(result.errorCode, "ERR_UNSUPPORTED_OPERATION");
});

test("a command past its deadline is answered EXPIRED and not run", async (t) => {
  let runs = 0;
  const dispatcher = new CommandDispatcher(quiet, () => NOW);
  dispatcher.handle("ping", async () => (runs++, { status: Status.OK }));
  const result = await dispatcher.dispatch(command({ commandId: "c", deadlineUnixMs: NOW - 1, ping: {} }));
  t.is(result.status, Status.EXPIRED);
  t.is(runs, 0);
});

test("a repeated command id returns the stored result without acting twice", async (t) => {
  let runs = 0;
  const dispatcher = new CommandDispatcher(quiet, () => NOW);
  dispatcher.handle("ping", async () => ({ status: Status.OK, pong: { payload: String(++runs) } }));
  const first = await dispatcher.dispatch(command({ commandId: "d", ping: {} }));
  const second = await dispatcher.dispatch(command({ commandId: "d", ping: {} }));
  t.is(runs, 1);
  t.deepEqual(second, first);
  t.is((await dispatcher.dispatch(command({ commandId: "e", ping: {} }))).pong?.payload, "2");
});

test("a handler that throws becomes a FAILED result carrying its code", async (t) => {
  const dispatcher = new CommandDispatcher(quiet, () => NOW);
  dispatcher.handle("ping", async () => {
    throw Object.assign(new Error("nginx -t failed"), { code: "ERR_NGINX_TEST_FAILED" });
  });
  const result = await dispatcher.dispatch(command({ commandId: "f", ping: {} }));
  t.is(result.status, Status.FAILED);
  t.is(result.errorCode, "ERR_NGINX_TEST_FAILED");
  t.is(result.message, "nginx -t failed");
});
