import { isLoopbackHost } from "@cutover/protocol";
import { EXIT, ExitError } from "./exit-error.js";

/**
 * Refuses, before anything is sent, what would put the API token at risk
 * without a word: a fingerprint with a plain http:// URL (there is no
 * certificate to pin, so nothing would be checked), and plain http to a host
 * other than this machine unless the operator opted in.
 */
export function checkTransport(settings: { url: string; fingerprint?: string }, allowPlain: boolean): void {
  let url: URL;
  try {
    url = new URL(settings.url);
  } catch {
    throw new ExitError(`the coordinator URL "${settings.url}" is not a URL (e.g. https://coordinator.example:7400): check --url or CUTOVER_URL`, EXIT.usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ExitError(`the coordinator URL must start with https:// or http://, got "${settings.url}"`, EXIT.usage);
  }
  if (url.protocol === "https:") return;
  if (settings.fingerprint) {
    throw new ExitError(
      `a fingerprint pins the coordinator's TLS certificate, but ${settings.url} is plain http and has none to check: ` +
        "use its https:// URL (`cutover server --tls`), or drop --fingerprint / CUTOVER_FINGERPRINT / `fingerprint:`",
      EXIT.usage,
    );
  }
  if (!allowPlain && !isLoopbackHost(url.hostname)) {
    throw new ExitError(
      `refusing to send the API token over plain http to ${url.hostname}: anyone on the way could read and use it. ` +
        "Use https:// with --fingerprint (`cutover server --tls` prints it), or on a trusted network pass --allow-plain (or set CUTOVER_ALLOW_PLAIN=1)",
      EXIT.usage,
    );
  }
}
