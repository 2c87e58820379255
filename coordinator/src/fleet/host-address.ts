import { isIP } from "node:net";
/** RFC 1123 host names: dot-separated labels of letters, digits and inner dashes. */
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** An address a host may be bound to (a token's --address, an agent's Hello): an IPv4 or IPv6 literal, or a host name. */
export function isHostAddress(text: string): boolean {
  return isIP(text) !== 0 || HOSTNAME.test(text);
}
