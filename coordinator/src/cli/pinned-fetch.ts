import { connect as tlsConnect } from "node:tls";
import { Agent, fetch as undiciFetch, type RequestInit as UndiciRequestInit } from "undici";
import { normalizeFingerprint } from "@cutover/protocol";

/**
 * fetch for a coordinator with a self-signed certificate: the TLS connection
 * is accepted only when the server's certificate has the pinned sha256
 * fingerprint (what `cutover server --tls` prints), whatever CA signed it.
 */
export function pinnedFetch(fingerprint: string): typeof fetch {
  const expected = normalizeFingerprint(fingerprint);
  const dispatcher = new Agent({
    connect: (options, callback) => {
      const socket = tlsConnect({ host: options.hostname, port: Number(options.port), servername: options.servername ?? undefined, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
      socket.once("secureConnect", () => {
        const presented = `sha256:${socket.getPeerCertificate().fingerprint256}`;
        if (presented !== expected) {
          socket.destroy();
          callback(Object.assign(new Error(`the coordinator's certificate is ${presented}, not the pinned ${expected}`), { code: "ERR_CERT_PIN_MISMATCH" }), null);
          return;
        }
        callback(null, socket);
      });
      socket.once("error", (error) => callback(error, null));
    },
  });
  return ((input: string, init?: RequestInit) => undiciFetch(input, { ...(init as UndiciRequestInit), dispatcher })) as unknown as typeof fetch;
}
