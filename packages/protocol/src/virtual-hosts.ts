/**
 * The capability an agent announces when it renders ProxySpec's and LbSite's names, TLS,
 * redirect and HTTP/2 (server_names, tls, …). An older agent would ignore those fields and
 * serve plain HTTP on the port, so the coordinator refuses such a spec for its host.
 */
export const SERVES_VIRTUAL_HOSTS = "proxy.virtual-hosts";
