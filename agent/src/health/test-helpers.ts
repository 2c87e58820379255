// A scripted HTTP server for the health tests. Not part of the module's public face.
import type { ExecutionContext } from "ava";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Seen {
  server: Server;
  port: number;
  connections: number;
  headers: IncomingHttpHeaders[];
}

/** An HTTP server answering `status(n)` to the n-th request (from 0); closed in teardown. */
export async function httpServer(t: ExecutionContext, address: string, status: (n: number) => number | "hang"): Promise<Seen> {
  const seen: Seen = { server: createServer(), port: 0, connections: 0, headers: [] };
  seen.server.on("connection", () => seen.connections++);
  seen.server.on("request", (req, res) => {
    const answer = status(seen.headers.length);
    seen.headers.push(req.headers);
    if (answer === "hang") return;
    res.statusCode = answer;
    res.end("body");
  });
  await new Promise<void>((resolve) => seen.server.listen(0, address, resolve));
  seen.port = (seen.server.address() as AddressInfo).port;
  t.teardown(() => {
    seen.server.closeAllConnections();
    seen.server.close();
  });
  return seen;
}

