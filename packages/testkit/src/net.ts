import { createServer } from "node:net";

/**
 * A loopback address of its own for a test "host": 127.0.<1–254>.<2–254>,
 * spread at random so test files running in parallel rarely meet.
 */
export function randomLoopback(): string {
  return `127.0.${1 + Math.floor(Math.random() * 254)}.${2 + Math.floor(Math.random() * 253)}`;
}

/** A port nobody listens on at `address` right now (bind 0, read it, close). */
export function freePort(address = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, address, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
