// Child process for the load tests: the color servers and the keep-alive client run
// here, so the test process's event loop does only the agent's work and the measured
// switch times are the agent's, as they would be on a host where apps are separate
// processes. Driven over IPC by test-helpers' startLoadChild().
import { closeServer, startColor, startLoad, type LoadOptions, type LoadReport } from "./test-helpers.js";

export type ChildRequest =
  | { type: "load"; port: number; options: LoadOptions }
  | { type: "completed"; id: number; count: number }
  | { type: "stop" };

export type ChildMessage =
  | { type: "ready"; blue: number; green: number }
  | { type: "completed"; id: number }
  | { type: "report"; report: LoadReport };

const address = process.argv[2];
if (address === undefined || process.send === undefined) {
  throw new Error("usage: fork load-child.js <address> (with an IPC channel)");
}
const send = (message: ChildMessage) => process.send!(message);
const [blue, green] = await Promise.all([startColor("blue", address), startColor("green", address)]);
let load: ReturnType<typeof startLoad> | undefined;

process.on("message", async (message: ChildRequest) => {
  if (message.type === "load") {
    load = startLoad(address, message.port, message.options);
  } else if (message.type === "completed") {
    await load?.completed(message.count);
    send({ type: "completed", id: message.id });
  } else if (message.type === "stop") {
    const report = load ? await load.stop() : undefined;
    await Promise.all([closeServer(blue.server), closeServer(green.server)]);
    if (report) send({ type: "report", report });
    process.disconnect();
  }
});
send({ type: "ready", blue: blue.port, green: green.port });
