/**
 * Whether an address names this machine only: the one test behind every
 * "plain http/ws is allowed on loopback" decision, in the coordinator, the
 * CLI and the agent. It parses the address; a prefix test would take
 * "127.0.0.1.attacker.example" (a hostname anyone can register) for loopback.
 * Written without node:net so the protocol package stays free of Node APIs.
 */

/** `host` is a URL's hostname (IPv6 in brackets or not) or a listen address: true for localhost, 127.0.0.0/8, ::1 and ::ffff:127.x.y.z. */
export function isLoopbackHost(host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (name === "localhost" || name === "localhost.") return true;
  const octets = ipv4Octets(name);
  if (octets) return octets[0] === 127;
  const groups = ipv6Groups(name);
  if (!groups) return false;
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  const isIpv6Loopback = zeros(0, 7) && groups[7] === 1;
  const isMappedIpv4Loopback = zeros(0, 5) && groups[5] === 0xffff && groups[6]! >> 8 === 127;
  return isIpv6Loopback || isMappedIpv4Loopback;
}

/** The four octets of a dotted-quad IPv4 literal (each 0–255, decimal), or undefined. */
function ipv4Octets(text: string): number[] | undefined {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!match) return undefined;
  const octets = match.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** The eight 16-bit groups of an IPv6 literal ("::" and a dotted IPv4 tail allowed), or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  let hex = text;
  const lastColon = text.lastIndexOf(":");
  if (lastColon < 0) return undefined;
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const octets = ipv4Octets(tail);
    if (!octets) return undefined;
    hex = `${text.slice(0, lastColon + 1)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const halves = hex.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if ([...head, ...rest].some(Number.isNaN)) return undefined;
  if (halves.length === 1) return head.length === 8 ? head : undefined;
  const missing = 8 - head.length - rest.length;
  return missing >= 1 ? [...head, ...new Array<number>(missing).fill(0), ...rest] : undefined;
}
