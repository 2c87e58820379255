import test from "ava";
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { APP_USER, EXAMPLE_APP_DIR } from "./harness/app-spec.js";
import { startFleet } from "./harness/fleet.js";

const LISTEN = 9100;

/** A line-protocol client on one connection: send a line, read the answer. */
async function lineClient(address: string, port: number): Promise<{ ask(line: string): Promise<string>; socket: Socket }> {
  const socket = connect(port, address);
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  const lines = createInterface({ input: socket });
  const waiting: ((line: string) => void)[] = [];
  lines.on("line", (line) => waiting.shift()?.(line));
  return {
    socket,
    ask: (line) =>
      new Promise((resolve, reject) => {
        waiting.push(resolve);
        socket.once("error", reject);
        socket.write(`${line}\n`);
      }),
  };
}

/** New connections in a loop, one VERSION each: what a client of a TCP service does. */
function newConnectionLoad(address: string, port: number) {
  let stopping = false;
  const report = { connections: 0, failed: 0, failures: [] as string[], versions: {} as Record<string, number> };
  const loop = async () => {
    while (!stopping && report.connections < 100_000) {
      report.connections++;
      try {
        const client = await lineClient(address, port);
        const answer = await client.ask("VERSION");
        client.socket.end();
        const version = answer.split(" ")[1] ?? "?";
        report.versions[version] = (report.versions[version] ?? 0) + 1;
      } catch (error) {
        report.failed++;
        if (report.failures.length < 10) report.failures.push((error as Error).message);
      }
    }
  };
  const loops = [loop(), loop()];
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return report;
    },
  };
}

test.serial("a TCP app is swapped blue/green through nginx stream: new connections never fail, an existing one keeps its color", async (t) => {
  const fleet = await startFleet(t, { hosts: 1 });
  const address = fleet.addresses[0]!;
  const spec = join(fleet.dir, "echo.yml");
  writeFileSync(
    spec,
    stringify({
      app: "echo",
      artifact: EXAMPLE_APP_DIR,
      run: { command: ["node", "server.mjs", "--tcp", "--port", "${PORT}", "--host", "${ADDRESS}"], user: APP_USER, stop_timeout: "5s" },
      ports: { blue: 7301, green: 7302 },
      proxy: { listen: LISTEN, protocol: "tcp" },
      health: { tcp: {}, interval: "100ms", healthy_threshold: 2, deadline: "15s" },
      hosts: { role: "geoip" },
      strategy: { type: "bluegreen", keep_previous: "30s" },
    }),
  );
  const v1 = await fleet.coordinator.cli(["deploy", spec, "--release", "v1", "--json"]);
  t.is(v1.exitCode, 0, v1.stdout + v1.stderr);

  const longLived = await lineClient(address, LISTEN);
  t.is(await longLived.ask("VERSION"), "VERSION v1 blue");
  const load = newConnectionLoad(address, LISTEN);
  const v2 = await fleet.coordinator.cli(["deploy", spec, "--release", "v2", "--json"]);
  t.is(v2.exitCode, 0, v2.stdout + v2.stderr);
  const fresh = await lineClient(address, LISTEN);
  t.is(await fresh.ask("VERSION"), "VERSION v2 green", "new connections reach the new color");
  fresh.socket.end();
  t.is(await longLived.ask("VERSION"), "VERSION v1 blue", "the connection opened before the switch still works, on the old color");
  t.is(await longLived.ask("still there?"), "still there?");
  longLived.socket.end();

  const report = await load.stop();
  t.log(`new connections during the swap: ${report.connections}, failed ${report.failed}, versions ${JSON.stringify(report.versions)}`);
  t.deepEqual(report.failures, []);
  t.true((report.versions.v1 ?? 0) > 0 && (report.versions.v2 ?? 0) > 0);
});
